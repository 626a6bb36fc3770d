package main

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"ginws.dev/examples/internal/browsertest"
)

// TestEditorInBrowser: two people in two headless Chromium profiles open the same room. Text
// typed in one textarea appears in the other; both type at once and the two pages converge on the
// same text holding both edits; each page lists two people present.
func TestEditorInBrowser(t *testing.T) {
	t.Parallel()
	browser := browsertest.Start(t)
	_, ts := startApp(t, Options{})
	const wait = 30 * time.Second

	alice, cancelAlice := browser.NewUser()
	defer cancelAlice()
	bob, cancelBob := browser.NewUser()
	defer cancelBob()
	tabs := map[string]context.Context{"alice": alice, "bob": bob}

	for _, tab := range tabs {
		browsertest.Do(t, tab, wait,
			chromedp.Navigate(ts.URL+"/?room=pad"),
			chromedp.WaitVisible(chromedp.CSS(`body[data-synced="true"]`)),
			chromedp.WaitVisible(chromedp.CSS(`#status[data-status="connected"]`)),
		)
	}
	value := func(tab context.Context) string {
		return browsertest.Value(t, tab, wait, chromedp.Evaluate[string](`document.querySelector("#editor").value`))
	}

	// One types, the other sees it.
	browsertest.Do(t, alice, wait, chromedp.SendKeys(chromedp.ID("editor"), "hello from alice"))
	browsertest.Value(t, bob, wait, chromedp.Poll[bool](`document.querySelector("#editor").value === "hello from alice"`))

	// Both type at the same moment, each at the end of their own copy.
	var wg sync.WaitGroup
	for name, tab := range tabs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(tab, wait)
			defer cancel()
			if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID("editor"), " | "+name+" was here")); err != nil {
				t.Errorf("%s typing: %v", name, err)
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	converged := `(() => {
		const v = document.querySelector("#editor").value
		return v === window.ginwsYjs.text.toString() && v.includes("alice was here") && v.includes("bob was here")
	})()`
	for _, tab := range tabs {
		browsertest.Value(t, tab, wait, chromedp.Poll[bool](converged))
	}
	// Both pages hold both edits; they must now be the same text.
	deadline := time.Now().Add(wait)
	for {
		a, b := value(alice), value(bob)
		if a == b {
			if !strings.HasPrefix(a, "hello from alice") {
				t.Fatalf("converged on %q, which lost the first edit", a)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pages did not converge:\nalice: %q\nbob:   %q", a, b)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Who is here: both pages list two people, one of them marked as "(you)".
	for name, tab := range tabs {
		browsertest.Value(t, tab, wait, chromedp.Poll[bool](`document.querySelector("#users").dataset.count === "2"`))
		users := browsertest.Value(t, tab, wait, chromedp.Text(chromedp.ID("users")))
		if strings.Count(users, "(you)") != 1 {
			t.Fatalf("%s's list of people: %q", name, users)
		}
	}
}

// TestSignedInEditorInBrowser: with RequireLogin, the page asks for a name, and after signing in
// the socket (which refuses anonymous handshakes) connects and the person is listed by that name.
func TestSignedInEditorInBrowser(t *testing.T) {
	t.Parallel()
	browser := browsertest.Start(t)
	_, ts := startApp(t, Options{RequireLogin: true})
	const wait = 30 * time.Second
	tab, cancel := browser.NewUser()
	defer cancel()
	browsertest.Do(t, tab, wait,
		chromedp.Navigate(ts.URL+"/?room=minutes"),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), "ada"),
		chromedp.Click(chromedp.ID("login")),
		chromedp.WaitVisible(chromedp.CSS(`body[data-synced="true"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#users[data-count="1"]`)),
	)
	if users := browsertest.Value(t, tab, wait, chromedp.Text(chromedp.ID("users"))); users != "ada (you)" {
		t.Fatalf("people listed: %q, want the signed-in name", users)
	}
	if room := browsertest.Value(t, tab, wait, chromedp.Evaluate[string](`document.body.dataset.room`)); room != "minutes" {
		t.Fatalf("after sign-in the page is in room %q, want the one asked for", room)
	}
}
