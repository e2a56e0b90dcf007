package console_test

// A minimal Chrome DevTools Protocol client over --remote-debugging-pipe
// (file descriptors 3 and 4, NUL-terminated JSON messages): enough to load
// pages, fill and submit forms, read the DOM and take screenshots in
// headless Chromium, with no dependency beyond the standard library.

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"time"
)

type cdpMsg struct {
	ID        int64           `json:"id,omitempty"`
	Method    string          `json:"method,omitempty"`
	Params    any             `json:"params,omitempty"`
	SessionID string          `json:"sessionId,omitempty"`
	Result    json.RawMessage `json:"result,omitempty"`
	Error     *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error,omitempty"`
}

type cdpEvent struct {
	Method    string          `json:"method"`
	SessionID string          `json:"sessionId"`
	Params    json.RawMessage `json:"params"`
}

// browser is a headless Chromium driven over a pipe.
type browser struct {
	cmd  *exec.Cmd
	w    io.WriteCloser
	mu   sync.Mutex
	next int64
	wait map[int64]chan cdpMsg
	evMu sync.Mutex
	subs []chan cdpEvent
	done chan struct{}
}

func chromiumPath() string {
	for _, p := range []string{os.Getenv("MEDSETTLE_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"} {
		if p == "" {
			continue
		}
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	return ""
}

func startBrowser(bin, userDir string, stderr io.Writer) (*browser, error) {
	toChrome, ourW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	ourR, fromChrome, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
		"--disable-default-apps", "--mute-audio", "--hide-scrollbars", "--remote-debugging-pipe",
		"--user-data-dir="+userDir, "about:blank")
	cmd.ExtraFiles = []*os.File{toChrome, fromChrome} // fd 3: commands in, fd 4: answers out
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	toChrome.Close()
	fromChrome.Close()
	b := &browser{cmd: cmd, w: ourW, wait: map[int64]chan cdpMsg{}, done: make(chan struct{})}
	go b.read(ourR)
	return b, nil
}

func (b *browser) read(r io.Reader) {
	defer close(b.done)
	br := bufio.NewReaderSize(r, 1<<20)
	for {
		raw, err := br.ReadBytes(0)
		if err != nil {
			return
		}
		raw = raw[:len(raw)-1]
		var m cdpMsg
		if json.Unmarshal(raw, &m) != nil {
			continue
		}
		if m.ID != 0 {
			b.mu.Lock()
			ch := b.wait[m.ID]
			delete(b.wait, m.ID)
			b.mu.Unlock()
			if ch != nil {
				ch <- m
			}
			continue
		}
		var ev cdpEvent
		_ = json.Unmarshal(raw, &ev)
		b.evMu.Lock()
		for _, s := range b.subs {
			select {
			case s <- ev:
			default:
			}
		}
		b.evMu.Unlock()
	}
}

func (b *browser) subscribe() chan cdpEvent {
	ch := make(chan cdpEvent, 256)
	b.evMu.Lock()
	b.subs = append(b.subs, ch)
	b.evMu.Unlock()
	return ch
}

// call sends a command (to a page session when session is set) and decodes its result.
func (b *browser) call(ctx context.Context, session, method string, params any, out any) error {
	b.mu.Lock()
	b.next++
	id := b.next
	ch := make(chan cdpMsg, 1)
	b.wait[id] = ch
	raw, err := json.Marshal(cdpMsg{ID: id, Method: method, Params: params, SessionID: session})
	if err == nil {
		_, err = b.w.Write(append(raw, 0))
	}
	b.mu.Unlock()
	if err != nil {
		return err
	}
	select {
	case m := <-ch:
		if m.Error != nil {
			return fmt.Errorf("%s: %s", method, m.Error.Message)
		}
		if out != nil {
			return json.Unmarshal(m.Result, out)
		}
		return nil
	case <-b.done:
		return errors.New("chromium exited")
	case <-ctx.Done():
		return fmt.Errorf("%s: %w", method, ctx.Err())
	}
}

func (b *browser) close() {
	_ = b.call(context.Background(), "", "Browser.close", nil, nil)
	select {
	case <-b.done:
	case <-time.After(5 * time.Second):
		_ = b.cmd.Process.Kill()
	}
	_ = b.cmd.Wait()
}

// tab is one page in a browser context of its own (its own cookies).
type tab struct {
	b       *browser
	session string
	events  chan cdpEvent
}

func (b *browser) newTab(ctx context.Context) (*tab, error) {
	var bc struct {
		BrowserContextID string `json:"browserContextId"`
	}
	if err := b.call(ctx, "", "Target.createBrowserContext", map[string]any{}, &bc); err != nil {
		return nil, err
	}
	var tg struct {
		TargetID string `json:"targetId"`
	}
	if err := b.call(ctx, "", "Target.createTarget", map[string]any{"url": "about:blank", "browserContextId": bc.BrowserContextID}, &tg); err != nil {
		return nil, err
	}
	var at struct {
		SessionID string `json:"sessionId"`
	}
	if err := b.call(ctx, "", "Target.attachToTarget", map[string]any{"targetId": tg.TargetID, "flatten": true}, &at); err != nil {
		return nil, err
	}
	t := &tab{b: b, session: at.SessionID, events: b.subscribe()}
	if err := b.call(ctx, t.session, "Page.enable", nil, nil); err != nil {
		return nil, err
	}
	err := b.call(ctx, t.session, "Emulation.setDeviceMetricsOverride",
		map[string]any{"width": 1400, "height": 1000, "deviceScaleFactor": 1, "mobile": false}, nil)
	return t, err
}

// waitLoad waits for the page's load event.
func (t *tab) waitLoad(ctx context.Context) error {
	for {
		select {
		case ev := <-t.events:
			if ev.SessionID == t.session && ev.Method == "Page.loadEventFired" {
				return nil
			}
		case <-ctx.Done():
			return fmt.Errorf("waiting for the page to load: %w", ctx.Err())
		}
	}
}

func (t *tab) drain() {
	for {
		select {
		case <-t.events:
		default:
			return
		}
	}
}

func (t *tab) navigate(ctx context.Context, url string) error {
	t.drain()
	var res struct {
		ErrorText string `json:"errorText"`
	}
	if err := t.b.call(ctx, t.session, "Page.navigate", map[string]any{"url": url}, &res); err != nil {
		return err
	}
	if res.ErrorText != "" {
		return fmt.Errorf("navigating to %s: %s", url, res.ErrorText)
	}
	return t.waitLoad(ctx)
}

// eval evaluates a JavaScript expression in the page (as DevTools does; the
// page itself runs no script) and returns its value.
func (t *tab) eval(ctx context.Context, expr string, out any) error {
	var res struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text      string `json:"text"`
			Exception struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	if err := t.b.call(ctx, t.session, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true}, &res); err != nil {
		return err
	}
	if res.ExceptionDetails != nil {
		return fmt.Errorf("evaluating %q: %s %s", expr, res.ExceptionDetails.Text, res.ExceptionDetails.Exception.Description)
	}
	if out != nil && len(res.Result.Value) > 0 {
		return json.Unmarshal(res.Result.Value, out)
	}
	return nil
}

// text is the trimmed textContent of the element with id ("" if none).
func (t *tab) text(ctx context.Context, id string) (string, error) {
	var s string
	err := t.eval(ctx, fmt.Sprintf(`(function(){var e=document.getElementById(%q);return e?e.textContent.trim():""})()`, id), &s)
	return s, err
}

// submit sets form fields by id and clicks the button with id, then waits
// for the next page.
func (t *tab) submit(ctx context.Context, fields map[string]string, button string) error {
	t.drain()
	js := "(function(){"
	for id, v := range fields {
		q, _ := json.Marshal(v)
		js += fmt.Sprintf("document.getElementById(%q).value=%s;", id, q)
	}
	js += fmt.Sprintf("document.getElementById(%q).click();return true})()", button)
	if err := t.eval(ctx, js, nil); err != nil {
		return err
	}
	return t.waitLoad(ctx)
}

// screenshot writes the whole page as a PNG.
func (t *tab) screenshot(ctx context.Context, path string) error {
	var res struct {
		Data string `json:"data"`
	}
	if err := t.b.call(ctx, t.session, "Page.captureScreenshot", map[string]any{"format": "png", "captureBeyondViewport": true}, &res); err != nil {
		return err
	}
	png, err := base64.StdEncoding.DecodeString(res.Data)
	if err != nil {
		return err
	}
	return os.WriteFile(path, png, 0o644)
}
