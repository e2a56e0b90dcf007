package fsi

import (
	"encoding/json"
	"fmt"
	"time"
)

// Path is the one endpoint of the national interface.
const Path = "/fsi/api/rsfComIfsService/callService"

// MaxInputChars is the national interface's limit on `input`, in characters.
const MaxInputChars = 40000

// TimeLayout is the national interface's time format (inf_time, setl_time,
// begntime, ...), at the counter's time zone, CST.
const TimeLayout = "2006-01-02 15:04:05"

// DateLayout is the national interface's date format (stmt_begndate, ...).
const DateLayout = "2006-01-02"

// MsgidStampLayout is the time stamp inside a msgid (characters 13-26).
const MsgidStampLayout = "20060102150405"

// CST is China Standard Time (UTC+8): msgids and times at the counter use it.
var CST = time.FixedZone("CST", 8*3600)

// Infcode values of an Answer.
const (
	InfcodeOK      = 0
	InfcodeRefused = -1
)

// ErrCodeOutcomeUnknown is Answer.ErrCode when the platform cannot tell
// whether a refused message took effect: reverse it with 2601 (see the
// package documentation).
const ErrCodeOutcomeUnknown = "outcome_unknown"

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

// Answer is the envelope of every answer. Output is the infno's output
// object (null on a refusal); decode it into the infno's type with Decode.
type Answer struct {
	Infcode     int             `json:"infcode"`
	InfRefmsgid string          `json:"inf_refmsgid"`
	RefmsgTime  string          `json:"refmsg_time"`
	RespondTime string          `json:"respond_time"`
	ErrMsg      string          `json:"err_msg"`
	WarnMsg     string          `json:"warn_msg"`
	Output      json.RawMessage `json:"output"`
	// ErrCode is ErrCodeOutcomeUnknown or absent (not part of the national
	// envelope, so it is written only when set).
	ErrCode string `json:"err_code,omitempty"`
}

// OutcomeUnknown reports whether the answer says the message's outcome is
// unknown: it must be reversed with 2601.
func (a *Answer) OutcomeUnknown() bool { return a.ErrCode == ErrCodeOutcomeUnknown }

// Decode unmarshals the output into v.
func (a *Answer) Decode(v any) error {
	if err := json.Unmarshal(a.Output, v); err != nil {
		return fmt.Errorf("fsi: decoding the output: %w", err)
	}
	return nil
}

// CheckMsgid checks the national shape of a msgid: fixmedins_code inst (12)
// + yyyyMMddHHmmss (14) + a 4-digit sequence. Its error is the platform's
// refusal text.
func CheckMsgid(msgid, inst string) error {
	if len(msgid) != 30 {
		return fmt.Errorf("msgid %q must be 30 characters: fixmedins_code + yyyyMMddHHmmss + 4-digit sequence", msgid)
	}
	if msgid[:12] != inst {
		return fmt.Errorf("msgid %q does not start with fixmedins_code %s", msgid, inst)
	}
	if _, err := time.Parse(MsgidStampLayout, msgid[12:26]); err != nil {
		return fmt.Errorf("msgid %q: characters 13-26 are not a yyyyMMddHHmmss time", msgid)
	}
	for _, c := range msgid[26:] {
		if c < '0' || c > '9' {
			return fmt.Errorf("msgid %q must end with a 4-digit sequence", msgid)
		}
	}
	return nil
}
