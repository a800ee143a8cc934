#!/usr/bin/env bash
# Kafka topic plan (deploy/kafka/topics.md): creates every public and internal topic the
# workers use, before they start, with an explicit partition count, replication factor and
# configs. Converges: a missing topic is created, an existing one gets its configs re-applied,
# and an existing one with a different partition count stops the run (co-partitioned topics
# and table changelogs must all have FUND_SENTINEL_PARTITIONS partitions; Kafka cannot
# shrink a topic and growing one moves keys to other partitions).
#
# Environment (the worker's own variables, so both read the same values):
#   BOOTSTRAP                      broker to talk to                  (kafka:9092)
#   FUND_SENTINEL_APP_ID           prefix of internal topics          (fund-sentinel)
#   FUND_SENTINEL_PARTITIONS       partitions of every keyed topic    (12)
#   FUND_SENTINEL_TOPIC_*          public topic names                 (SPEC §2 defaults)
#   REPLICATION_FACTOR             1 for a single broker, 3 in production
#   MIN_INSYNC_REPLICAS            default: 2 when REPLICATION_FACTOR >= 3, else 1
#   KAFKA_BIN                      where kafka-topics.sh / kafka-configs.sh are (/opt/kafka/bin)
set -euo pipefail

BOOTSTRAP=${BOOTSTRAP:-kafka:9092}
APP_ID=${FUND_SENTINEL_APP_ID:-fund-sentinel}
PARTITIONS=${FUND_SENTINEL_PARTITIONS:-12}
RF=${REPLICATION_FACTOR:-1}
if [[ -z "${MIN_INSYNC_REPLICAS:-}" ]]; then
  if (( RF >= 3 )); then MIN_INSYNC_REPLICAS=2; else MIN_INSYNC_REPLICAS=1; fi
fi
KAFKA_BIN=${KAFKA_BIN:-/opt/kafka/bin}

SETTLEMENTS=${FUND_SENTINEL_TOPIC_SETTLEMENTS:-settlements}
DLQ=${FUND_SENTINEL_TOPIC_DLQ:-settlements-dlq}
DECISIONS=${FUND_SENTINEL_TOPIC_DECISIONS:-decisions}
ALERTS=${FUND_SENTINEL_TOPIC_ALERTS:-alerts}
RULES=${FUND_SENTINEL_TOPIC_RULES:-rules}

DAY_MS=86400000
days() { echo $(( $1 * DAY_MS )); }

# name | partitions | configs (key=value pairs separated by ';')
PLAN=(
  # Public topics (SPEC §2).
  "$SETTLEMENTS|$PARTITIONS|cleanup.policy=delete;retention.ms=$(days 14)"
  "$DLQ|$PARTITIONS|cleanup.policy=delete;retention.ms=$(days 30)"
  "$DECISIONS|$PARTITIONS|cleanup.policy=delete;retention.ms=$(days 30)"
  "$ALERTS|$PARTITIONS|cleanup.policy=delete;retention.ms=$(days 365)"
  "$RULES|1|cleanup.policy=compact;retention.ms=-1"
  # Re-keying hops (internal, app id prefix, version suffix).
  "$APP_ID-entity-updates-v1|$PARTITIONS|cleanup.policy=delete;retention.ms=$(days 7)"
  "$APP_ID-claims-by-patient-v1|$PARTITIONS|cleanup.policy=delete;retention.ms=$(days 7)"
  "$APP_ID-claims-by-trace-v1|$PARTITIONS|cleanup.policy=delete;retention.ms=$(days 7)"
  "$APP_ID-fund-by-region-v1|$PARTITIONS|cleanup.policy=delete;retention.ms=$(days 7)"
  # Table changelogs: compacted; where the table forgets by age, also deleted by age, a
  # day past the longest window of the rule set (dedup 7 d, patient history 60 d, trace
  # codes 400 d). Raise these before raising those windows. Month tables are bounded by
  # entities (or scopes) x months and keep everything.
  "$APP_ID-settlement-ids-v1-changelog|$PARTITIONS|cleanup.policy=compact,delete;retention.ms=$(days 8)"
  "$APP_ID-entity-months-v1-changelog|$PARTITIONS|cleanup.policy=compact;retention.ms=-1"
  "$APP_ID-fund-months-v1-changelog|$PARTITIONS|cleanup.policy=compact;retention.ms=-1"
  "$APP_ID-patient-history-v1-changelog|$PARTITIONS|cleanup.policy=compact,delete;retention.ms=$(days 61)"
  "$APP_ID-trace-code-batches-v1-changelog|$PARTITIONS|cleanup.policy=compact,delete;retention.ms=$(days 401)"
  # Faust's leader-election topic (created by Faust with the app's replication factor
  # otherwise, which a single broker cannot satisfy).
  "$APP_ID-__assignor-__leader|1|cleanup.policy=delete"
)

topics() { "$KAFKA_BIN/kafka-topics.sh" --bootstrap-server "$BOOTSTRAP" "$@"; }
configs() { "$KAFKA_BIN/kafka-configs.sh" --bootstrap-server "$BOOTSTRAP" "$@"; }

# "PartitionCount: N" of every existing topic, in one call.
described=$(topics --describe)
declare -A EXISTING=()
while read -r name count; do
  [[ -n "$name" ]] && EXISTING[$name]=$count
done < <(sed -n 's/^Topic: *\([^[:space:]]*\).*PartitionCount: *\([0-9]*\).*/\1 \2/p' \
  <<<"$described")

failed=0
for entry in "${PLAN[@]}"; do
  IFS='|' read -r name partitions conf <<<"$entry"
  conf="$conf;min.insync.replicas=$MIN_INSYNC_REPLICAS"
  IFS=';' read -r -a pairs <<<"$conf"
  if [[ -z "${EXISTING[$name]:-}" ]]; then
    args=()
    for kv in "${pairs[@]}"; do args+=(--config "$kv"); done
    topics --create --if-not-exists --topic "$name" --partitions "$partitions" \
      --replication-factor "$RF" "${args[@]}"
    echo "created $name ($partitions partitions, rf $RF)"
  elif [[ "${EXISTING[$name]}" != "$partitions" ]]; then
    echo "ERROR: $name has ${EXISTING[$name]} partitions, the plan says $partitions" >&2
    failed=1
  else
    # kafka-configs takes one comma-separated list; list values go in [brackets].
    alter=()
    for kv in "${pairs[@]}"; do
      value=${kv#*=}
      if [[ $value == *,* ]]; then kv="${kv%%=*}=[$value]"; fi
      alter+=("$kv")
    done
    configs --alter --entity-type topics --entity-name "$name" \
      --add-config "$(IFS=','; echo "${alter[*]}")" >/dev/null
    echo "kept $name ($partitions partitions), configs re-applied"
  fi
done
exit "$failed"
