package settlement

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/medsettle/medsettle/rules"
)

// ManualClaim is a manual claim (零星报销/手工报销): the person paid in full at
// an institution and claims afterwards. It is priced as of the day of care and
// settled through the same engine, with the claim id as its idempotency key.
type ManualClaim struct {
	ClaimID     string      `json:"claim_id"`
	PsnNo       string      `json:"psn_no"`
	Institution string      `json:"fixmedins_code"`
	MedType     string      `json:"med_type"`
	ServiceDate string      `json:"service_date"` // yyyy-mm-dd, the day of care
	UseAccount  bool        `json:"acct_used"`
	Lines       []LineInput `json:"feedetail"`
}

// ManualInfno marks manual claims in the message log.
const ManualInfno = "manual"

// Validate checks a claim's own fields (not the rules: Settle does that) and
// returns its service date.
func (c *ManualClaim) Validate() (rules.Date, error) {
	switch {
	case c.ClaimID == "":
		return 0, Errorf(EINVALID, "claim_id is required")
	case len(c.ClaimID) > 64:
		return 0, Errorf(EINVALID, "claim_id is longer than 64 characters")
	case c.PsnNo == "":
		return 0, Errorf(EINVALID, "psn_no is required")
	case c.Institution == "":
		return 0, Errorf(EINVALID, "fixmedins_code is required")
	case c.MedType == "":
		return 0, Errorf(EINVALID, "med_type is required")
	case len(c.Lines) == 0:
		return 0, &Error{Code: EINVALID, Rule: rules.CodeEmptyClaim, Message: "feedetail is empty"}
	}
	d, err := rules.ParseDate(c.ServiceDate)
	if err != nil {
		return 0, Errorf(EINVALID, "service_date: %v", err)
	}
	return d, nil
}

// Digest identifies the claim's content: the same claim id with other content is refused.
func (c *ManualClaim) Digest() string {
	b, _ := json.Marshal(c)
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// ManualSettle settles a manual claim once: the same claim again returns the
// first answer; the same claim id with other content is refused (ECONFLICT).
func (e *Engine) ManualSettle(ctx context.Context, c ManualClaim) (SettleAnswer, error) {
	day, err := c.Validate()
	if err != nil {
		return SettleAnswer{}, err
	}
	if e.Rules.Institutions[c.Institution] == nil {
		return SettleAnswer{}, Errorf(EINVALID, "fixmedins_code %q is not a designated institution", c.Institution)
	}
	// Lines are classified against the catalog of the day of care.
	service := time.Date(day.Year(), time.Month(int(day)/100%100), int(day)%100, 12, 0, 0, 0, rules.CST)
	lines := make([]LineInput, len(c.Lines))
	for i, l := range c.Lines {
		if l.FeeTime.IsZero() {
			l.FeeTime = service
		}
		lines[i] = l
	}
	msg := Msg{ID: "claim:" + c.ClaimID, Infno: ManualInfno, Institution: c.Institution, Digest: c.Digest()}
	now := e.now()
	setlID := NewID("S")
	claim := directSale{inst: c.Institution, medType: c.MedType, kind: VisitManual,
		in: PharmacyInput{PsnNo: c.PsnNo, UseAccount: c.UseAccount, Lines: lines}, serviceDate: day}
	out, here, err := settleHere(ctx, e.Store, msg, now, Prefetch{}, setlID, func(ctx context.Context, tx Tx) (*Settlement, bool, error) {
		p, err := e.direct(ctx, tx, claim, msg.ID, setlID, now)
		return p.local, err == nil && p.remote == nil, err
	})
	if err == nil && !here {
		return SettleAnswer{}, Errorf(EINVALID, "claim %s: psn_no %s is insured in another province: claim there", c.ClaimID, c.PsnNo)
	}
	if err != nil {
		return SettleAnswer{}, fmt.Errorf("claim %s: %w", c.ClaimID, err)
	}
	return out, nil
}
