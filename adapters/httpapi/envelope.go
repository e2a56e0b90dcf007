// Package httpapi is the counter interface over HTTP: the national
// medical-insurance platform's envelope (INTERFACES.md), so that an existing
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
	"strings"
	"time"
	"unicode/utf8"
)

// Path is the one endpoint of the national interface.
const Path = "/fsi/api/rsfComIfsService/callService"

// MaxInputChars is the national interface's limit on `input`.
const MaxInputChars = 40000

// maxBody bounds a request body: the input limit plus the envelope's fields.
// The limit counts characters, and one character takes up to 4 bytes of
// UTF-8, so the input may take 4 × MaxInputChars bytes; 16 KiB is ample for
// the envelope's other fields.
const maxBody = 4*MaxInputChars + 16<<10

// Envelope is a request as every HIS sends it.
type Envelope struct {
	Infno          string          `json:"infno"`
	Msgid          string          `json:"msgid"`
	MdtrtareaAdmvs string          `json:"mdtrtarea_admvs"`
	InsuplcAdmdvs  string          `json:"insuplc_admdvs"`
	RecerSysCode   string          `json:"recer_sys_code"`
	DevNo          string          `json:"dev_no"`
	DevSafeInfo    string          `json:"dev_safe_info"`
	Cainfo         string          `json:"cainfo"`
	Signtype       string          `json:"signtype"`
	Infver         string          `json:"infver"`
	OpterType      string          `json:"opter_type"`
	Opter          string          `json:"opter"`
	OpterName      string          `json:"opter_name"`
	InfTime        string          `json:"inf_time"`
	FixmedinsCode  string          `json:"fixmedins_code"`
	FixmedinsName  string          `json:"fixmedins_name"`
	SignNo         string          `json:"sign_no"`
	Input          json.RawMessage `json:"input"`
}

// Answer is the envelope of every answer.
type Answer struct {
	Infcode     int    `json:"infcode"`
	InfRefmsgid string `json:"inf_refmsgid"`
	RefmsgTime  string `json:"refmsg_time"`
	RespondTime string `json:"respond_time"`
	ErrMsg      string `json:"err_msg"`
	WarnMsg     string `json:"warn_msg"`
	Output      any    `json:"output"`
}

// refusal is a business refusal: infcode -1 with Msg as err_msg.
type refusal struct{ Msg string }

func (r *refusal) Error() string { return r.Msg }

func refuse(format string, args ...any) error { return &refusal{Msg: fmt.Sprintf(format, args...)} }

// timeLayout is the national interface's time format.
const timeLayout = "2006-01-02 15:04:05"

// decodeEnvelope parses and checks the envelope, not yet the input.
func decodeEnvelope(body []byte) (*Envelope, error) {
	var env Envelope
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
	if len(msgid) != 30 {
		return refuse("msgid %q must be 30 characters: fixmedins_code + yyyyMMddHHmmss + 4-digit sequence", msgid)
	}
	if msgid[:12] != inst {
		return refuse("msgid %q does not start with fixmedins_code %s", msgid, inst)
	}
	if _, err := time.Parse("20060102150405", msgid[12:26]); err != nil {
		return refuse("msgid %q: characters 13-26 are not a yyyyMMddHHmmss time", msgid)
	}
	for _, c := range msgid[26:] {
		if c < '0' || c > '9' {
			return refuse("msgid %q must end with a 4-digit sequence", msgid)
		}
	}
	return nil
}

// digest identifies a request body for idempotency: the same msgid with the
// same infno and input (whitespace aside) is a repeat; anything else is a
// different request.
func digest(env *Envelope) string {
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
			return refuse("input.%s: want a %s, got JSON %s", te.Field, jsonKind(te.Type.String()), te.Value)
		}
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return refuse("input: malformed JSON at offset %d", se.Offset)
		}
		return refuse("input: %v", err)
	}
	return nil
}

func jsonKind(goType string) string {
	switch {
	case strings.HasPrefix(goType, "[]"):
		return "array"
	case goType == "string":
		return "string"
	case strings.Contains(goType, "rules.Text"):
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
	t, err := time.ParseInLocation(timeLayout, s, cst)
	if err != nil || len(s) != len(timeLayout) { // Go's parser would take fractional seconds too
		return time.Time{}, refuse("%s %q is not a yyyy-MM-dd HH:mm:ss time", path, s)
	}
	return t, nil
}

var cst = time.FixedZone("CST", 8*3600)
