// Package httpapi is the counter interface over HTTP: the national
// medical-insurance platform's envelope (docs/interface.md), so that an existing
// HIS or pharmacy POS integration points at medsettle with a new address and
// nothing else. Business refusals are infcode -1 with an err_msg naming the
// field at fault; HTTP status codes say transport trouble only.
package httpapi

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/medsettle/medsettle/adapters/fsi"
	"github.com/medsettle/medsettle/rules"
)

// Path is the one endpoint of the national interface.
const Path = fsi.Path

// MaxInputChars is the national interface's limit on `input`.
const MaxInputChars = fsi.MaxInputChars

// maxBody bounds a request body: the input limit plus the envelope's fields.
// The limit counts characters, and one character takes up to 4 bytes of
// UTF-8, so the input may take 4 × MaxInputChars bytes; 16 KiB is ample for
// the envelope's other fields.
const maxBody = 4*MaxInputChars + 16<<10

// refusal is a business refusal: infcode -1 with Msg as err_msg.
type refusal struct{ Msg string }

func (r *refusal) Error() string { return r.Msg }

func refuse(format string, args ...any) error { return &refusal{Msg: fmt.Sprintf(format, args...)} }

// timeLayout is the national interface's time format.
const timeLayout = fsi.TimeLayout

// decodeEnvelope parses and checks the envelope, not yet the input.
func decodeEnvelope(body []byte) (*fsi.Envelope, error) {
	var env fsi.Envelope
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&env); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, refuse("%s: want a %s, got JSON %s", te.Field, te.Type, te.Value)
		}
		return nil, refuse("malformed JSON: %v", err)
	}
	if dec.More() {
		return nil, refuse("malformed JSON: trailing data after the envelope")
	}
	switch {
	case env.Infno == "":
		return nil, refuse("infno is required")
	case env.FixmedinsCode == "":
		return nil, refuse("fixmedins_code is required")
	case env.Msgid == "":
		return nil, refuse("msgid is required")
	}
	if err := checkMsgid(env.Msgid, env.FixmedinsCode); err != nil {
		return nil, err
	}
	in := bytes.TrimSpace(env.Input)
	if len(in) == 0 || in[0] != '{' {
		return nil, refuse("input must be a JSON object")
	}
	if n := utf8.RuneCount(in); n > MaxInputChars {
		return nil, refuse("input has %d characters, more than the limit of %d", n, MaxInputChars)
	}
	return &env, nil
}

// checkMsgid enforces the national shape: fixmedins_code (12) +
// yyyyMMddHHmmss (14) + a 4-digit sequence.
func checkMsgid(msgid, inst string) error {
	if err := fsi.CheckMsgid(msgid, inst); err != nil {
		return &refusal{Msg: err.Error()}
	}
	return nil
}

// digest identifies a request body for idempotency: the same msgid with the
// same infno and input (whitespace aside) is a repeat; anything else is a
// different request.
func digest(env *fsi.Envelope) string {
	var buf bytes.Buffer
	if err := json.Compact(&buf, env.Input); err != nil {
		buf.Reset()
		buf.Write(env.Input)
	}
	h := sha256.New()
	h.Write([]byte(env.Infno))
	h.Write([]byte{0})
	h.Write([]byte(env.FixmedinsCode))
	h.Write([]byte{0})
	h.Write(buf.Bytes())
	return hex.EncodeToString(h.Sum(nil))
}

// decodeInput unmarshals input into v, naming the field on a type error.
func decodeInput(raw json.RawMessage, v any) error {
	if err := json.Unmarshal(raw, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return refuse("input.%s: want a %s, got JSON %s", te.Field, jsonKind(te.Type), te.Value)
		}
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return refuse("input: malformed JSON at offset %d", se.Offset)
		}
		return refuse("input: %v", err)
	}
	return nil
}

// formerlyAnonymous are the input objects that were anonymous structs in
// this package before they moved to package fsi: a type error on one of them
// has always shown the struct itself, and still does.
var formerlyAnonymous = map[reflect.Type]bool{
	reflect.TypeOf(fsi.SignIn{}): true, reflect.TypeOf(fsi.PersonQuery{}): true, reflect.TypeOf(fsi.VisitRef{}): true,
	reflect.TypeOf(fsi.Diseinfo{}): true, reflect.TypeOf(fsi.Dscginfo{}): true, reflect.TypeOf(fsi.SetlRef{}): true,
	reflect.TypeOf(fsi.ReverseRef{}): true,
}

func jsonKind(t reflect.Type) string {
	if formerlyAnonymous[t] {
		fields := make([]reflect.StructField, t.NumField())
		for i := range fields {
			f := t.Field(i)
			fields[i] = reflect.StructField{Name: f.Name, Type: f.Type, Tag: f.Tag}
		}
		t = reflect.StructOf(fields)
	}
	goType := t.String()
	switch {
	case strings.HasPrefix(goType, "[]"):
		return "array"
	case goType == "string":
		return "string"
	case strings.Contains(goType, "rules.Text") || strings.Contains(goType, "fsi.Text"):
		return "string or number"
	case strings.Contains(goType, "."):
		return "object"
	}
	return goType
}

// required returns a refusal naming the first empty field; pairs are (path, value).
func required(pairs ...string) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		if strings.TrimSpace(pairs[i+1]) == "" {
			return refuse("%s is required", pairs[i])
		}
	}
	return nil
}

// parseTime reads the national "yyyy-MM-dd HH:mm:ss" at the counter (CST);
// empty is zero (the engine then uses the time of arrival).
func parseTime(path, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.ParseInLocation(timeLayout, s, rules.CST)
	if err != nil || len(s) != len(timeLayout) { // Go's parser would take fractional seconds too
		return time.Time{}, refuse("%s %q is not a yyyy-MM-dd HH:mm:ss time", path, s)
	}
	return t, nil
}

// need is a field that must not be empty: its path in the refusal and where
// the decoded input holds it.
type need struct {
	path string
	v    *string
}

// decodeRequired decodes the call's input into v, then refuses it, as
// required does, at the first of fields that is empty once decoded.
func decodeRequired(c *call, v any, fields ...need) error {
	if err := decodeInput(c.env.Input, v); err != nil {
		return err
	}
	for _, f := range fields {
		if err := required(f.path, *f.v); err != nil {
			return err
		}
	}
	return nil
}
