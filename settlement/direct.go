package settlement

import (
	"context"
	"errors"
	"time"

	"github.com/medsettle/medsettle/rules"
)

type PharmacyInput struct {
	PsnNo        string
	Insutype     string
	MedfeeSumamt string
	UseAccount   bool
	Lines        []LineInput
}

// PharmacyPreSettle prices a sale, writing nothing (2101).
func (e *Engine) PharmacyPreSettle(ctx context.Context, inst string, in PharmacyInput) (SettleAnswer, error) {
	now := e.now()
	var out SettleAnswer
	err := e.Store.View(ctx, func(ctx context.Context, tx Tx) error {
		var err error
		out, err = e.pharmacy(ctx, &previewTx{Tx: tx}, inst, in, "", now)
		return err
	})
	var rc *remoteClaim
	if errors.As(err, &rc) {
		return e.preSettleRemote(ctx, inst, SettleInput{UseAccount: in.UseAccount}, rc, now)
	}
	return out, err
}

// PharmacySettle opens a pharmacy visit, stores its lines and settles it in one transaction (2102).
func (e *Engine) PharmacySettle(ctx context.Context, msg Msg, in PharmacyInput) (SettleAnswer, error) {
	now := e.now()
	var out SettleAnswer
	err := e.Store.Update(ctx, func(ctx context.Context, tx Tx) error {
		var err error
		out, err = idempotent(ctx, tx, msg, now, func() (SettleAnswer, string, error) {
			a, err := e.pharmacy(ctx, tx, msg.Institution, in, msg.ID, now)
			return a, a.SetlID, err
		})
		return err
	})
	var rc *remoteClaim
	if errors.As(err, &rc) {
		// A sale to a person insured in another province: the visit and its
		// lines are stored first, then settled through the hub.
		err := e.Store.Update(ctx, func(ctx context.Context, tx Tx) error {
			if err := tx.PutVisit(ctx, rc.visit); err != nil {
				return err
			}
			return tx.PutLines(ctx, rc.lines)
		})
		if err != nil {
			return SettleAnswer{}, err
		}
		return e.settleRemote(ctx, msg, SettleInput{UseAccount: in.UseAccount}, rc, now)
	}
	return out, err
}

func (e *Engine) pharmacy(ctx context.Context, tx Tx, inst string, in PharmacyInput, msgid string, now time.Time) (SettleAnswer, error) {
	return e.direct(ctx, tx, inst, "41", VisitPharmacy, in, 0, msgid, now)
}

// direct opens a visit, stores its lines and settles it in one go: a
// pharmacy sale, or a manual claim. An empty msgid previews without writing.
func (e *Engine) direct(ctx context.Context, tx Tx, inst, medType string, kind VisitKind, in PharmacyInput, serviceDate rules.Date, msgid string, now time.Time) (SettleAnswer, error) {
	if err := e.checkMedType(inst, medType); err != nil {
		return SettleAnswer{}, err
	}
	p, err := e.person(ctx, tx, in.PsnNo)
	if err != nil {
		return SettleAnswer{}, err
	}
	if len(in.Lines) == 0 {
		return SettleAnswer{}, &Error{Code: EINVALID, Rule: rules.CodeEmptyClaim, Message: "feedetail is empty"}
	}
	v := &Visit{MdtrtID: NewID("M"), PsnNo: p.PsnNo, Institution: inst, Kind: kind, MedType: medType,
		Insutype: p.Insutype, Begin: now, Status: VisitOpen}
	lines, err := e.classify(v, nil, in.Lines, now)
	if err != nil {
		return SettleAnswer{}, err
	}
	if err := tx.PutVisit(ctx, v); err != nil {
		return SettleAnswer{}, err
	}
	if err := tx.PutLines(ctx, lines); err != nil {
		return SettleAnswer{}, err
	}
	s, v, yc, err := e.price(ctx, tx, inst, SettleInput{MdtrtID: v.MdtrtID, PsnNo: p.PsnNo, MedType: medType,
		Insutype: in.Insutype, MedfeeSumamt: in.MedfeeSumamt, UseAccount: in.UseAccount, ServiceDate: serviceDate}, now)
	if err != nil {
		return SettleAnswer{}, err
	}
	if msgid == "" { // preview
		return answerOf(s), nil
	}
	s.Msgid = msgid
	if err := e.commit(ctx, tx, s, yc, TxnSettle); err != nil {
		return SettleAnswer{}, err
	}
	v.Status = VisitSettled
	if err := tx.PutVisit(ctx, v); err != nil {
		return SettleAnswer{}, err
	}
	return answerOf(s), nil
}

// previewTx lets a pre-settlement run the settle path in a read-only
// transaction: the visit and lines it would create are kept in memory.
type previewTx struct {
	Tx
	visit *Visit
	lines []FeeLine
}

func (p *previewTx) PutVisit(_ context.Context, v *Visit) error { c := *v; p.visit = &c; return nil }
func (p *previewTx) PutLines(_ context.Context, l []FeeLine) error {
	p.lines = append(p.lines, l...)
	return nil
}
func (p *previewTx) Visit(ctx context.Context, id string) (*Visit, error) {
	if p.visit != nil && p.visit.MdtrtID == id {
		c := *p.visit
		return &c, nil
	}
	return p.Tx.Visit(ctx, id)
}
func (p *previewTx) Lines(ctx context.Context, id string) ([]FeeLine, error) {
	if p.visit != nil && p.visit.MdtrtID == id {
		return p.lines, nil
	}
	return p.Tx.Lines(ctx, id)
}
