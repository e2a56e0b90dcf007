package main

import (
	"errors"

	"github.com/medsettle/medsettle/adapters/hubhttp"
	"github.com/medsettle/medsettle/settlement"
)

// hubClient connects this province's platform to the national hub.
func hubClient(c serveConfig) (settlement.Hub, error) {
	if c.hubToken == "" {
		return nil, errors.New("--hub-url needs --hub-token (env MEDSETTLE_HUB_TOKEN)")
	}
	return &hubhttp.Client{URL: c.hubURL, Province: c.province, Token: c.hubToken}, nil
}
