// Command send-welcome is the function that greets new customers. The
// welcome-new-users rule turns each com.shop.user.created event into
// {"email": ..., "name": ...} and invokes it with that as the CloudEvent's data.
//
// Locally the mail is written to the log as a JSON record with msg "outbox",
// which nubo up prints and nubo logs send-welcome shows; a production build
// would hand it to a mail provider instead.
package main

import (
	"fmt"
	"net/http"
	"net/mail"
	"os"

	"github.com/nubo-dev/nubo/examples/shop/internal/cloudevent"
	"github.com/nubo-dev/nubo/examples/shop/internal/server"
)

// defaultPort is used when $PORT is unset (a function has no fixed port).
const defaultPort = 8091

type welcome struct {
	To      string `json:"to"`
	From    string `json:"from"`
	Subject string `json:"subject"`
	Body    string `json:"body"`
}

func main() {
	log := server.NewLogger()
	shop, from := server.Env("SHOP_NAME", "the shop"), server.Env("MAIL_FROM", "welcome@shop.localhost")

	compose := func(e cloudevent.Event) (welcome, error) {
		var in struct {
			Email string `json:"email"`
			Name  string `json:"name"`
		}
		if err := e.DataAs(&in); err != nil {
			return welcome{}, err
		}
		if _, err := mail.ParseAddress(in.Email); err != nil {
			return welcome{}, fmt.Errorf("event %s: invalid email %q", e.ID, in.Email)
		}
		name := in.Name
		if name == "" {
			name = "there"
		}
		return welcome{
			To: in.Email, From: from,
			Subject: fmt.Sprintf("Welcome to %s, %s!", shop, name),
			Body:    fmt.Sprintf("Hi %s,\n\nthanks for signing up at %s.\n", name, shop),
		}, nil
	}

	mux := http.NewServeMux()
	mux.HandleFunc("POST /", func(w http.ResponseWriter, r *http.Request) {
		events, batch, err := cloudevent.Read(r)
		if err != nil {
			server.WriteError(w, http.StatusBadRequest, "%v", err)
			return
		}
		// Compose every mail before sending any, so that a bad event in a
		// batch fails it before anyone is greeted twice on the redelivery.
		mails := make([]welcome, 0, len(events))
		for _, e := range events {
			m, err := compose(e)
			if err != nil {
				server.WriteError(w, http.StatusUnprocessableEntity, "%v", err)
				return
			}
			mails = append(mails, m)
		}
		sent := make([]map[string]string, 0, len(mails))
		for _, m := range mails {
			log.Info("outbox", "to", m.To, "from", m.From, "subject", m.Subject, "body", m.Body)
			sent = append(sent, map[string]string{"to": m.To, "subject": m.Subject})
		}
		if !batch {
			server.WriteJSON(w, http.StatusOK, sent[0])
			return
		}
		server.WriteJSON(w, http.StatusOK, sent)
	})
	if err := server.Run(log, defaultPort, mux); err != nil {
		log.Error("send-welcome stopped", "err", err)
		os.Exit(1)
	}
}
