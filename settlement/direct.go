package settlement

import (
	"context"
	"time"

	"github.com/medsettle/medsettle/rules"
)

// PharmacyInput is 2101/2102: a pharmacy sale carries its lines and settles at once.
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
	var p priced
	err := e.Store.View(ctx, func(ctx context.Context, tx Tx) error {
		var err error
		p, err = e.direct(ctx, &previewTx{Tx: tx}, directSale{inst: inst, medType: "41", kind: VisitPharmacy, in: in},
			"", NewID("S"), now) // a preview shows a setl_id it will not keep
		return err
	})
	switch {
	case err != nil:
		return SettleAnswer{}, err
	case p.remote != nil:
		return e.preSettleRemote(ctx, inst, SettleInput{UseAccount: in.UseAccount}, p.remote, now)
	}
	return answerOf(p.local), nil
}

// PharmacySettle opens a pharmacy visit, stores its lines and settles it in one transaction (2102).
func (e *Engine) PharmacySettle(ctx context.Context, msg Msg, in PharmacyInput) (SettleAnswer, error) {
	now := e.now()
	setlID := NewID("S")
	var keys Prefetch
	if in.PsnNo != "" {
		keys = Prefetch{Person: in.PsnNo, Year: DateOf(now).Year(), Chain: ChainOf(in.PsnNo)}
	}
	var remote *remoteClaim
	sale := directSale{inst: msg.Institution, medType: "41", kind: VisitPharmacy, in: in}
	out, here, err := settleHere(ctx, e.Store, msg, now, keys, setlID, func(ctx context.Context, tx Tx) (*Settlement, bool, error) {
		p, err := e.direct(ctx, tx, sale, msg.ID, setlID, now)
		remote = p.remote
		return p.local, err == nil && p.remote == nil, err
	})
	if err != nil || here {
		return out, err
	}
	// A sale to a person insured in another province: the visit and its
	// lines are stored first, then settled through the hub.
	err = e.Store.Update(ctx, func(ctx context.Context, tx Tx) error {
		if err := tx.PutVisit(ctx, remote.visit); err != nil {
			return err
		}
		return tx.PutLines(ctx, remote.lines)
	})
	if err != nil {
		return SettleAnswer{}, err
	}
	return e.settleRemote(ctx, msg, SettleInput{UseAccount: in.UseAccount}, remote, now)
}

// directSale is a claim that opens its visit and settles it in one go: a
// pharmacy sale, or a manual claim priced as of serviceDate.
type directSale struct {
	inst        string
	medType     string
	kind        VisitKind
	in          PharmacyInput
	serviceDate rules.Date // zero: today
}

// direct opens a visit, stores its lines and prices it; settled here, it is
// committed as settlement setlID. An empty msgid previews without committing.
func (e *Engine) direct(ctx context.Context, tx Tx, d directSale, msgid, setlID string, now time.Time) (priced, error) {
	if err := e.checkMedType(d.inst, d.medType); err != nil {
		return priced{}, err
	}
	p, err := e.person(ctx, tx, d.in.PsnNo)
	if err != nil {
		return priced{}, err
	}
	if len(d.in.Lines) == 0 {
		return priced{}, &Error{Code: EINVALID, Rule: rules.CodeEmptyClaim, Message: "feedetail is empty"}
	}
	v := &Visit{MdtrtID: NewID("M"), PsnNo: p.PsnNo, Institution: d.inst, Kind: d.kind, MedType: d.medType,
		Insutype: p.Insutype, Begin: now, Status: VisitOpen}
	lines, err := e.classify(v, nil, d.in.Lines, now)
	if err != nil {
		return priced{}, err
	}
	if err := tx.PutVisit(ctx, v); err != nil {
		return priced{}, err
	}
	if err := tx.PutLines(ctx, lines); err != nil {
		return priced{}, err
	}
	// The visit and lines just written are priced as they are in memory, not read back.
	pr, err := e.priceLines(ctx, tx, d.inst, SettleInput{MdtrtID: v.MdtrtID, PsnNo: p.PsnNo, MedType: d.medType,
		Insutype: d.in.Insutype, MedfeeSumamt: d.in.MedfeeSumamt, UseAccount: d.in.UseAccount, ServiceDate: d.serviceDate},
		d.medType, v, lines, p, setlID, now)
	if err != nil || pr.remote != nil || msgid == "" {
		return pr, err
	}
	pr.local.Msgid = msgid
	pr.visit.Status = VisitSettled // written after the settlement: the visit's row is new in this transaction
	return pr, e.commit(ctx, tx, pr.local, writes{kind: TxnSettle, counters: &pr.counters, last: pr.visit})
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
