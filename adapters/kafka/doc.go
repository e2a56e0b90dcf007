// Package kafka connects the settlement engine to Kafka (franz-go): the
// outbox relay that publishes settlement events, the intake of manual
// claims, the client configuration shared by the commands, and an
// in-process broker for `medsettle dev`.
//
// # Settlement events (topic medsettle.settlements)
//
// Every settlement and every cancellation writes one event to the outbox
// table in the database transaction that makes it (see settlement.Event, and
// AppendLedger in adapters/postgres). The relay (Relay, `medsettle relay`) publishes
// those rows to Kafka:
//
//   - topic: medsettle.settlements
//   - key: psn_no, the insured person. Kafka's key partitioner puts all of
//     a person's events on one Kafka partition, in the order they committed.
//   - value: the event as stored, JSON of settlement.SettlementEvent:
//     event_id, type ("settlement.settled" or "settlement.cancelled"),
//     version, setl_id, reverses (the settlement a cancellation reverses),
//     mdtrt_id, psn_no, fixmedins_code, insuplc_admdvs, mdtrtarea_admvs,
//     med_type, insutype, setl_time, setlinfo, setldetail, ledger_txn,
//     chain ("psn:<psn_no>") and seq (1, 2, ... per person, without gaps
//     between a person's settlement events), and the visit (visit_kind,
//     begntime, endtime, feedetail).
//   - headers: event_id, event_type, version (the payload's version as
//     decimal text; 1 today). A change that breaks readers of the payload
//     gets a new version; fields may be added within a version.
//
// Delivery is at least once, in order per person: the relay produces with
// an idempotent producer (acks=all) and marks a row published (deletes it
// from the outbox, which holds only what is still to publish) only after
// the broker acknowledged it, so a relay killed between the two publishes
// those rows again when it or another relay resumes. Everything marked is
// never sent again. A consumer therefore drops repeated event ids; Dedup
// does that in memory, and a consumer that writes to a database should
// instead insert the event_id into a processed-events table with its
// effect, in one transaction. Dropping repeats keeps the order: each
// publication of a person's events is the tail of that person's unmarked
// rows in seq order, so the first copy of every event arrives in seq order.
// Equivalently, a consumer may keep, per person, the highest seq it applied
// and skip anything at or below it.
//
// # Outbox leases
//
// Several relays may run. The outbox is split into 16 partitions by the key
// (settlement.OutboxPart); a relay publishes a partition only while it holds
// the partition's lease in outbox_leases (claimed and renewed with a
// conditional upsert in a SERIALIZABLE transaction, expiring by the
// database's clock), and marks rows published only in a transaction that
// checks it still holds the lease. Live relays (heartbeating in
// outbox_relays) share the partitions evenly: each holds ceil(16 / live
// relays), releasing surplus partitions between batches. A relay renews
// every LeaseTTL/3, stops starting batches LeaseTTL/2 after its last
// renewal began, and its produce requests time out after LeaseTTL/5, so it
// is done with a partition before its lease can expire and no two relays
// publish a partition at the same time. (A process frozen for longer than
// that between sending and the broker's receiving could still land a late
// copy: a duplicate, which consumers drop; true fencing would take a
// transactional producer per partition, not done.) A relay that stops
// releases its leases; one that dies loses them when they expire (LeaseTTL,
// 15 s by default), and the rows it published but had not marked are
// published again by the next holder.
//
// # Manual claims (topic medsettle.claims)
//
// Manual claims (零星报销) arrive on medsettle.claims, key claim_id, value
// JSON of settlement.ManualClaim (its lines, feedetail, carry the national
// field names feedetl_sn, chrg_bchno, med_list_codg, medins_list_codg, cnt,
// pric, det_item_fee_sumamt and fee_ocur_time). The intake (Intake) reads them in the
// consumer group medsettle-intake, settles each once through
// settlement.Engine.ManualSettle (idempotent by claim_id: the same claim
// again gets the first answer; the same claim_id with other content is
// refused), and answers on medsettle.claims.results, key claim_id, value
// JSON of ClaimResult:
//
//	{"claim_id": "...", "status": "settled", <the settlement: settlement.SettleAnswer's fields>}
//	{"claim_id": "...", "status": "refused", "refusal": {"code": "invalid", "rule": "...", "message": "..."}}
//
// with headers claim_id and status (and code on a refusal). Refusal codes
// are settlement's: invalid, not_found, conflict, forbidden.
//
// A message that is no claim at all (not JSON, a required field missing or
// malformed, an institution that is not designated, a key that is not its
// claim_id) goes to the dead-letter topic medsettle.claims.dlq, with the
// reason in the header dlq_reason and in the value (JSON of DeadLetter,
// which also carries the original record). It never stops the intake.
// Internal errors (the database unreachable) are retried, never
// dead-lettered; only a claim whose data the database itself rejects
// (SQLSTATE class 22 or 23, three times running) is, since it would stop
// its partition for good otherwise. BlockRebalanceOnPoll keeps a batch's
// partitions until it is committed. The intake commits a claim's offset only after its result
// or dead letter was acknowledged, so after a crash a claim may be answered
// twice, with the same answer.
//
// # Configuration
//
// Config holds the connection options every command shares: --kafka-brokers
// (comma-separated host:port), --kafka-tls (with --kafka-tls-ca for a
// private CA), --kafka-sasl-mechanism (PLAIN, SCRAM-SHA-256 or
// SCRAM-SHA-512) with --kafka-user and --kafka-password (or the
// MEDSETTLE_KAFKA_* environment variables). StartDevBroker runs an
// in-process broker with these topics created, for development.
package kafka

// The topics.
const (
	TopicSettlements  = "medsettle.settlements"
	TopicClaims       = "medsettle.claims"
	TopicClaimResults = "medsettle.claims.results"
	TopicClaimsDLQ    = "medsettle.claims.dlq"
	// IntakeGroup is the consumer group of the intake.
	IntakeGroup = "medsettle-intake"
)

// Record headers.
const (
	HeaderEventID   = "event_id"
	HeaderEventType = "event_type"
	HeaderVersion   = "version"
	HeaderClaimID   = "claim_id"
	HeaderStatus    = "status"
	HeaderCode      = "code"
	HeaderDLQReason = "dlq_reason"
)
