// Package fsi is the national counter interface (HIS / pharmacy POS to the
// medical-insurance platform) as medsettle serves it: the one definition of
// its wire contract, shared by the server (adapters/httpapi) and the
// integrators' client (package client below).
//
// A transaction is a request Envelope (infno, msgid, the institution, an
// input object) posted to Path; every answer is an Answer (infcode, err_msg,
// an output object). The inputs and outputs of each infno are the types of
// infno.go; money is Money (exact, in fen, written "12.30"), never a float.
//
// # Outcome codes
//
// Infcode is InfcodeOK (0) or InfcodeRefused (-1), as on the national
// platform. A refusal changed nothing, except when its ErrCode is
// ErrCodeOutcomeUnknown ("outcome_unknown"): the platform failed or ran out
// of time while handling the message and cannot tell whether it took effect.
// The message must then be reversed with 2601 (冲正) under its msgid; it is
// never resent under a new msgid. err_code is present in the answer only
// then (`"err_code":"outcome_unknown"` after "output"), so every other
// answer is exactly the national envelope; read the code, not err_msg's
// wording, which is for people.
package fsi
