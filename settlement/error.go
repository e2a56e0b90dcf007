package settlement

import (
	"errors"
	"fmt"

	"github.com/medsettle/medsettle/rules"
)

// Error codes. They map straight onto the counter interface: every code but
// EINTERNAL is a refusal the counter can act on (infcode -1 with Message as
// err_msg); EINTERNAL's detail is logged, never shown.
const (
	EINVALID   = "invalid"   // bad input: Message names the field
	ENOTFOUND  = "not_found" // the visit, settlement or person does not exist (for this caller)
	ECONFLICT  = "conflict"  // the state forbids it: already settled, cancelled, msgid reused with another body
	EFORBIDDEN = "forbidden" // the caller may not act on this object
	EINTERNAL  = "internal"
)

// Error is a refusal with a machine code and a message for the person at the counter.
type Error struct {
	Code    string
	Message string
	// Rule is the pricing refusal code (rules.Code*) when pricing refused the claim.
	Rule string
}

func (e *Error) Error() string {
	if e.Rule != "" {
		return fmt.Sprintf("settlement: %s (%s): %s", e.Code, e.Rule, e.Message)
	}
	return fmt.Sprintf("settlement: %s: %s", e.Code, e.Message)
}

// Errorf builds a refusal.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of err, EINTERNAL for anything that is not an *Error.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	if err == nil {
		return ""
	}
	return EINTERNAL
}

// ErrorMessage returns the human message of a refusal, "internal error" otherwise.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

// fromRules turns a pricing refusal into a settlement refusal.
func fromRules(err error) error {
	var re *rules.Error
	if errors.As(err, &re) {
		return &Error{Code: EINVALID, Message: re.Message, Rule: re.Code}
	}
	return err
}
