package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"ginws.dev/examples/internal/browsertest"
)

// TestChatInBrowser: two people in two headless Chromium profiles sign in through the page, enter
// one room, and a message typed by one shows up on the other's page (and on the sender's).
func TestChatInBrowser(t *testing.T) {
	t.Parallel()
	browser := browsertest.Start(t)
	ts := startApp(t)
	const wait = 30 * time.Second

	alice, cancelAlice := browser.NewUser()
	defer cancelAlice()
	bob, cancelBob := browser.NewUser()
	defer cancelBob()

	enter := func(tab context.Context, name string) {
		browsertest.Do(t, tab, wait,
			chromedp.Navigate(ts.URL+"/?next=/chat/lobby/"),
			chromedp.WaitVisible(chromedp.ID("username")),
			chromedp.SendKeys(chromedp.ID("username"), name),
			chromedp.Click(chromedp.ID("login")),
			chromedp.WaitVisible(chromedp.CSS(`body[data-connected="true"]`)),
		)
	}
	enter(alice, "alice")
	enter(bob, "bob")

	browsertest.Do(t, alice, wait,
		chromedp.SendKeys(chromedp.ID("message-input"), "hello from alice"),
		chromedp.Click(chromedp.ID("send")),
	)
	for name, tab := range map[string]context.Context{"bob": bob, "alice": alice} {
		browsertest.Value(t, tab, wait,
			chromedp.Poll[bool](`document.querySelector("#chat-log").textContent.includes("hello from alice")`))
		log := browsertest.Value(t, tab, wait, chromedp.Text(chromedp.ID("chat-log")))
		if !strings.Contains(log, "alice") {
			t.Fatalf("%s's page shows %q, want the message with its author", name, log)
		}
	}
}
