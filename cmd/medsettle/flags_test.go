package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestFlagsTakeTheEnvironmentThenTheCommandLine(t *testing.T) {
	t.Setenv("MEDSETTLE_DSN", "")
	t.Setenv("DATABASE_URL", "postgres://from-database-url")
	t.Setenv("MEDSETTLE_TEST_WAIT", "3s")
	var out bytes.Buffer
	f := newFlags("test", &out)
	var db database
	db.flags(f)
	var wait time.Duration
	var listen string
	f.Duration(&wait, "wait", time.Second, "how long", "MEDSETTLE_TEST_WAIT")
	f.String(&listen, "listen", ":8080", "listen address", "MEDSETTLE_TEST_LISTEN")
	require.NoError(t, f.parse([]string{"--wait", "5s"}))
	require.Equal(t, "postgres://from-database-url", db.dsn, "the second variable when the first is empty")
	require.Equal(t, 5*time.Second, wait, "the command line wins over the environment")
	require.Equal(t, ":8080", listen, "the default when no variable is set")

	t.Setenv("MEDSETTLE_DSN", "postgres://from-medsettle-dsn")
	f = newFlags("test", &out)
	db = database{}
	db.flags(f)
	require.NoError(t, f.parse(nil))
	require.Equal(t, "postgres://from-medsettle-dsn", db.dsn, "the first variable wins")
}

func TestFlagsRefuseABadVariableNamingIt(t *testing.T) {
	t.Setenv("MEDSETTLE_TEST_WAIT", "soon")
	var out bytes.Buffer
	f := newFlags("test", &out)
	var wait time.Duration
	f.Duration(&wait, "wait", time.Second, "how long", "MEDSETTLE_TEST_WAIT")
	require.Error(t, f.parse(nil))
	require.Contains(t, out.String(), `medsettle test: $MEDSETTLE_TEST_WAIT (for --wait): invalid value "soon"`)
}

func TestHelpListsTheEnvironment(t *testing.T) {
	code, _, stderr := runCmd(t, "", "serve", "-h")
	require.Equal(t, 2, code)
	require.Contains(t, stderr, "PostgreSQL/CockroachDB URL (env MEDSETTLE_DSN or DATABASE_URL)")
	require.Contains(t, stderr, "(env MEDSETTLE_PROVINCE; empty: every region, no hub)")
	env := stderr[strings.Index(stderr, "Environment"):]
	for _, v := range []string{"MEDSETTLE_LISTEN", "MEDSETTLE_KEYS", "MEDSETTLE_HUB_PEER_TOKEN", "MEDSETTLE_CONSOLE_SECRET"} {
		require.Contains(t, env, v)
	}
}

func TestCommandErrorsAndExitStatus(t *testing.T) {
	t.Setenv("MEDSETTLE_KEYS", "")
	code, _, stderr := runCmd(t, "", "serve")
	require.Equal(t, 1, code)
	require.Equal(t, "medsettle serve: --keys (or MEDSETTLE_KEYS) is required\n", stderr)

	code, _, stderr = runCmd(t, "short", "keys", "hash")
	require.Equal(t, 2, code)
	require.Equal(t, "medsettle keys hash: a key must have at least 16 characters\n", stderr)

	code, _, stderr = runCmd(t, "", "hub", "--peer", "150000=http://127.0.0.1:1", "extra")
	require.Equal(t, 2, code)
	require.Contains(t, stderr, `medsettle hub: unexpected arguments ["extra"]`)

	code, _, stderr = runCmd(t, "", "load", "--count", "1", "--duration", "1s")
	require.Equal(t, 2, code)
	require.Equal(t, "medsettle load: give --duration or --count, not both\n", stderr)
}
