/**
 * Metrics the rules and dashboards read from processes other than the app. The consistency test
 * requires every non-app name to be listed here with its source, so a typo cannot hide as
 * "some exporter's metric". Names are those of the images pinned in infra/images.ts.
 */
export const externalMetrics: Record<string, string> = {
  up: "prometheus (synthetic, per target)",
  prometheus_rule_evaluation_failures_total: "prometheus",
  alertmanager_notifications_failed_total: "alertmanager",
  pg_up: "postgres-exporter",
  pg_stat_database_numbackends: "postgres-exporter",
  pg_stat_database_xact_commit: "postgres-exporter",
  pg_stat_database_xact_rollback: "postgres-exporter",
  pg_settings_max_connections: "postgres-exporter",
  pg_database_size_bytes: "postgres-exporter",
  redis_up: "redis-exporter",
  redis_connected_clients: "redis-exporter",
  redis_memory_used_bytes: "redis-exporter",
  redis_memory_max_bytes: "redis-exporter",
  redis_commands_processed_total: "redis-exporter",
  redis_keyspace_hits_total: "redis-exporter",
  redis_keyspace_misses_total: "redis-exporter",
  redis_evicted_keys_total: "redis-exporter",
  container_memory_working_set_bytes: "cadvisor",
  container_spec_memory_limit_bytes: "cadvisor",
  container_cpu_usage_seconds_total: "cadvisor",
  container_network_receive_bytes_total: "cadvisor",
  container_network_transmit_bytes_total: "cadvisor",
  node_cpu_seconds_total: "node-exporter",
  node_memory_MemAvailable_bytes: "node-exporter",
  node_memory_MemTotal_bytes: "node-exporter",
  node_memory_SwapFree_bytes: "node-exporter",
  node_memory_SwapTotal_bytes: "node-exporter",
  node_load1: "node-exporter",
  node_filesystem_avail_bytes: "node-exporter",
  node_filesystem_size_bytes: "node-exporter",
  node_filesystem_readonly: "node-exporter",
  probe_success: "blackbox-exporter",
  probe_duration_seconds: "blackbox-exporter",
  probe_ssl_earliest_cert_expiry: "blackbox-exporter",
};

/** Prefixes the app itself exports (its own metrics and prom-client's defaults). */
export const appMetricPrefixes = ["inferstack_", "process_", "nodejs_"];
