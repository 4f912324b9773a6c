// quote prices a basket before an order is placed: subtotal, VAT and total.
// It is a nubo function in plain Node.js, with no SDK and no dependencies:
// a process serving HTTP on $PORT, which nubo invokes by POSTing a
// CloudEvent in binary mode (ce-* headers, the data as the body). A 2xx
// answer is the result.
//
// Its http trigger (POST /quote) delivers events of type nubo.http.request,
// whose data is the HTTP request ({method, path, headers, query, body});
// `nubo invoke quote --data '{"items": [...]}'` sends the basket itself.
'use strict';

const http = require('node:http');

// VAT rates by currency, in percent: the shop sells in the euro area at the
// standard French rate, and elsewhere without VAT.
const VAT = { EUR: 20 };

function quote(basket) {
  if (!basket || !Array.isArray(basket.items) || basket.items.length === 0) {
    throw new Error('a basket needs items: [{productId, quantity, priceCents}]');
  }
  const currency = basket.currency || 'EUR';
  let subtotalCents = 0;
  for (const [i, item] of basket.items.entries()) {
    if (!Number.isInteger(item.quantity) || item.quantity < 1 || !Number.isInteger(item.priceCents) || item.priceCents < 0) {
      throw new Error(`items[${i}]: quantity must be an integer >= 1 and priceCents an integer >= 0`);
    }
    subtotalCents += item.quantity * item.priceCents;
  }
  const rate = VAT[currency] || 0;
  const vatCents = Math.round((subtotalCents * rate) / 100);
  return { subtotalCents, vatRate: rate, vatCents, totalCents: subtotalCents + vatCents, currency };
}

// basketOf reads the basket from one event: an HTTP request's body, or the
// event's data itself.
function basketOf(type, data) {
  if (type === 'nubo.http.request') {
    const req = JSON.parse(data);
    const body = req.isBase64Encoded ? Buffer.from(req.body || '', 'base64').toString() : req.body;
    return JSON.parse(body || '{}');
  }
  return JSON.parse(data || '{}');
}

function answer(res, status, value) {
  const body = JSON.stringify(value) + '\n';
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

const server = http.createServer((req, res) => {
  if (req.method !== 'POST') {
    return answer(res, 405, { error: 'a function takes CloudEvents by POST' });
  }
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const raw = Buffer.concat(chunks).toString();
    try {
      if ((req.headers['content-type'] || '').startsWith('application/cloudevents-batch+json')) {
        // A batch: a JSON array of structured events.
        const events = JSON.parse(raw);
        return answer(res, 200, events.map((e) => quote(basketOf(e.type, typeof e.data === 'string' ? e.data : JSON.stringify(e.data)))));
      }
      return answer(res, 200, quote(basketOf(req.headers['ce-type'], raw)));
    } catch (err) {
      // A basket that cannot be priced is the caller's mistake: 400.
      return answer(res, 400, { error: `event ${req.headers['ce-id'] || '(batch)'}: ${err.message}` });
    }
  });
});

server.listen(Number(process.env.PORT || 8080), () => {
  console.log(JSON.stringify({ level: 'INFO', msg: 'listening', port: server.address().port }));
});

// nubo stops an idle instance with SIGTERM: finish what is in flight.
process.on('SIGTERM', () => server.close(() => process.exit(0)));
