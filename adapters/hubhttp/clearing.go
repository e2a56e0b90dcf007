package hubhttp

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/medsettle/medsettle/rules"
	"github.com/medsettle/medsettle/settlement"
)

// The monthly clearing over HTTP: what the hub's clearing workflow asks of a
// province (settlement.ClearingPeer, which *settlement.Engine implements).
// The province serves it next to the settlement endpoints, under the same
// hub token; PeerClient calls it.

// Clearing paths, hub → province.
const (
	PeerStatementsPath = "/hub-peer/v1/clearing/statements"
	PeerConfirmPath    = "/hub-peer/v1/clearing/confirm"
	PeerPaymentPath    = "/hub-peer/v1/clearing/payment"
	PeerReceiptPath    = "/hub-peer/v1/clearing/receipt"
	PeerTopUpPath      = "/hub-peer/v1/clearing/topup"
)

// Wire shapes of the clearing requests.
type (
	periodRequest struct {
		Period settlement.Period `json:"period"`
	}
	postingRequest struct {
		Statement settlement.Statement `json:"statement"`
		Verdicts  []settlement.Verdict `json:"verdicts"`
	}
	topUpRequest struct {
		Period    settlement.Period `json:"period"`
		Treatment string            `json:"treatment_province"`
		Share     rules.Ratio       `json:"share"`
	}
	amountAnswer struct {
		Amount rules.Money `json:"amount"`
	}
)

// mountClearing adds the clearing endpoints for peer to mux.
func mountClearing(mux *http.ServeMux, h *peerHandler, peer settlement.ClearingPeer, log *slog.Logger) {
	serve := func(path string, in func() any, run func(ctx context.Context, req any) (any, error)) {
		mux.HandleFunc("POST "+path, func(w http.ResponseWriter, r *http.Request) {
			if !h.auth(w, r) {
				return
			}
			req := in()
			if !decodeBody(w, r, req) {
				return
			}
			out, err := run(r.Context(), req)
			writeResult(w, log, "clearing "+path, out, err, http.StatusInternalServerError)
		})
	}
	serve(PeerStatementsPath, func() any { return &periodRequest{} }, func(ctx context.Context, req any) (any, error) {
		return peer.Statements(ctx, req.(*periodRequest).Period)
	})
	serve(PeerConfirmPath, func() any { return &settlement.Statement{} }, func(ctx context.Context, req any) (any, error) {
		return peer.Confirm(ctx, *req.(*settlement.Statement))
	})
	serve(PeerPaymentPath, func() any { return &postingRequest{} }, func(ctx context.Context, req any) (any, error) {
		p := req.(*postingRequest)
		m, err := peer.PostPayment(ctx, p.Statement, p.Verdicts)
		return amountAnswer{m}, err
	})
	serve(PeerReceiptPath, func() any { return &postingRequest{} }, func(ctx context.Context, req any) (any, error) {
		p := req.(*postingRequest)
		m, err := peer.PostReceipt(ctx, p.Statement, p.Verdicts)
		return amountAnswer{m}, err
	})
	serve(PeerTopUpPath, func() any { return &topUpRequest{} }, func(ctx context.Context, req any) (any, error) {
		t := req.(*topUpRequest)
		m, err := peer.TopUp(ctx, t.Period, t.Treatment, t.Share)
		return amountAnswer{m}, err
	})
}

var _ settlement.ClearingPeer = (*PeerClient)(nil)

// Statements implements settlement.ClearingPeer over HTTP.
func (p *PeerClient) Statements(ctx context.Context, period settlement.Period) ([]settlement.Statement, error) {
	var out []settlement.Statement
	err := p.call(PeerStatementsPath, "statements of "+string(period)).do(ctx, periodRequest{period}, &out)
	return out, err
}

// Confirm implements settlement.ClearingPeer over HTTP.
func (p *PeerClient) Confirm(ctx context.Context, st settlement.Statement) ([]settlement.Verdict, error) {
	var out []settlement.Verdict
	err := p.call(PeerConfirmPath, "confirmation of "+st.Treatment+"'s statement").do(ctx, st, &out)
	return out, err
}

// PostPayment implements settlement.ClearingPeer over HTTP.
func (p *PeerClient) PostPayment(ctx context.Context, st settlement.Statement, v []settlement.Verdict) (rules.Money, error) {
	var out amountAnswer
	err := p.call(PeerPaymentPath, "payment to "+st.Treatment).do(ctx, postingRequest{st, v}, &out)
	return out.Amount, err
}

// PostReceipt implements settlement.ClearingPeer over HTTP.
func (p *PeerClient) PostReceipt(ctx context.Context, st settlement.Statement, v []settlement.Verdict) (rules.Money, error) {
	var out amountAnswer
	err := p.call(PeerReceiptPath, "receipt from "+st.Insured).do(ctx, postingRequest{st, v}, &out)
	return out.Amount, err
}

// TopUp implements settlement.ClearingPeer over HTTP.
func (p *PeerClient) TopUp(ctx context.Context, period settlement.Period, treatment string, share rules.Ratio) (rules.Money, error) {
	var out amountAnswer
	err := p.call(PeerTopUpPath, "top-up for "+treatment).do(ctx, topUpRequest{period, treatment, share}, &out)
	return out.Amount, err
}
