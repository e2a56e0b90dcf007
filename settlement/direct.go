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
		s, err := e.pharmacy(ctx, &previewTx{Tx: tx}, inst, in, "", "", now)
		if err == nil {
			out = answerOf(s)
		}
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
	setlID := NewID("S")
	err := e.Store.Update(ctx, func(ctx context.Context, tx Tx) error {
		if in.PsnNo != "" {
			prefetch(tx, Prefetch{Person: in.PsnNo, Year: DateOf(now).Year(), Chain: ChainOf(in.PsnNo)})
		}
		var err error
		out, err = settleOnce(ctx, tx, msg, now, setlID, func() (*Settlement, error) {
			return e.pharmacy(ctx, tx, msg.Institution, in, msg.ID, setlID, now)
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

func (e *Engine) pharmacy(ctx context.Context, tx Tx, inst string, in PharmacyInput, msgid, setlID string, now time.Time) (*Settlement, error) {
	return e.direct(ctx, tx, inst, "41", VisitPharmacy, in, 0, msgid, setlID, now)
}

// direct opens a visit, stores its lines and settles it in one go, as
// settlement setlID: a pharmacy sale, or a manual claim. An empty msgid
// previews without writing.
func (e *Engine) direct(ctx context.Context, tx Tx, inst, medType string, kind VisitKind, in PharmacyInput,
	serviceDate rules.Date, msgid, setlID string, now time.Time) (*Settlement, error) {
	if err := e.checkMedType(inst, medType); err != nil {
		return nil, err
	}
	p, err := e.person(ctx, tx, in.PsnNo)
	if err != nil {
		return nil, err
	}
	if len(in.Lines) == 0 {
		return nil, &Error{Code: EINVALID, Rule: rules.CodeEmptyClaim, Message: "feedetail is empty"}
	}
	v := &Visit{MdtrtID: NewID("M"), PsnNo: p.PsnNo, Institution: inst, Kind: kind, MedType: medType,
		Insutype: p.Insutype, Begin: now, Status: VisitOpen}
	lines, err := e.classify(v, nil, in.Lines, now)
	if err != nil {
		return nil, err
	}
	if err := tx.PutVisit(ctx, v); err != nil {
		return nil, err
	}
	if err := tx.PutLines(ctx, lines); err != nil {
		return nil, err
	}
	// The visit and lines just written are priced as they are in memory, not read back.
	s, v, yc, err := e.priceLines(ctx, tx, inst, SettleInput{MdtrtID: v.MdtrtID, PsnNo: p.PsnNo, MedType: medType,
		Insutype: in.Insutype, MedfeeSumamt: in.MedfeeSumamt, UseAccount: in.UseAccount, ServiceDate: serviceDate},
		medType, v, lines, p, now)
	if err != nil {
		return nil, err
	}
	if msgid == "" { // preview
		return s, nil
	}
	s.SetlID, s.Msgid = setlID, msgid
	if err := e.commit(ctx, tx, s, yc, TxnSettle); err != nil {
		return nil, err
	}
	v.Status = VisitSettled
	return s, tx.PutVisit(ctx, v)
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
