/**
 * The `datastore.*` sections of IPFS Cluster 1.1.6: where its CRDT consensus keeps the pinset
 * (pebble by default, badger, badger3 or leveldb). Here the pinset and the Raft log live in one
 * Deno KV database under the Raft data folder whatever the file says, so these sections are
 * accepted with their keys checked and their values ignored.
 *
 * Keys are the JSON tags of `datastore/{pebble,badger,badger3,leveldb}/config.go` at v1.1.6
 * (jsonConfig and the *Options structs), plus pebble's `max_concurrent_compactions` that
 * v1.0.7–v1.1.4 wrote.
 */
import { ignoredSection, type KeyTree } from '../config/schema.ts'

const NOTE = 'ignored: the pinset lives in Deno KV here (<raft data folder>/state.kv, or ' +
  '<config folder>/crdt/state.kv under CRDT consensus)'

const keys = (names: string): Record<string, true> =>
  Object.fromEntries(names.trim().split(/\s+/).map((k) => [k, true]))

const pebbleLevel: KeyTree = keys(`block_restart_interval block_size block_size_threshold
  compression filter_type filter_policy index_block_size target_file_size`)

/** `datastore.pebble`. */
export const pebbleSection = ignoredSection('datastore.pebble', {
  folder: true,
  pebble_options: {
    ...keys(`cache_size_bytes bytes_per_sync disable_wal flush_delay_delete_range
      flush_delay_range_key flush_split_bytes format_major_version l0_compaction_file_threshold
      l0_compaction_threshold l0_stop_writes_threshold l_base_max_bytes max_open_files
      mem_table_size mem_table_stop_writes_threshold read_only wal_bytes_per_sync
      max_concurrent_compactions`),
    levels: [pebbleLevel],
  },
}, NOTE)

/** `datastore.badger`. */
export const badgerSection = ignoredSection('datastore.badger', {
  ...keys('folder gc_discard_ratio gc_interval gc_sleep'),
  badger_options: keys(`dir value_dir sync_writes table_loading_mode value_log_loading_mode
    num_versions_to_keep max_table_size level_size_multiplier max_levels value_threshold
    num_memtables num_level_zero_tables num_level_zero_tables_stall level_one_size
    value_log_file_size value_log_max_entries num_compactors compact_l_0_on_close read_only
    truncate`),
}, NOTE)

/** `datastore.badger3`. */
export const badger3Section = ignoredSection('datastore.badger3', {
  ...keys('folder gc_discard_ratio gc_interval gc_sleep'),
  badger_options: keys(`dir value_dir sync_writes num_versions_to_keep read_only compression
    in_memory metrics_enabled num_goroutines mem_table_size base_table_size base_level_size
    level_size_multiplier table_size_multiplier max_levels v_log_percentile value_threshold
    num_memtables block_size bloom_false_positive block_cache_size index_cache_size
    num_level_zero_tables num_level_zero_tables_stall value_log_file_size value_log_max_entries
    num_compactors compact_l_0_on_close lmax_compaction zstd_compression_level
    verify_value_checksum checksum_verification_mode detect_conflicts namespace_offset`),
}, NOTE)

/** `datastore.leveldb`. */
export const leveldbSection = ignoredSection('datastore.leveldb', {
  folder: true,
  leveldb_options: keys(`block_cache_capacity block_cache_evict_removed block_restart_interval
    block_size compaction_expand_limit_factor compaction_gp_overlaps_factor compaction_l0_trigger
    compaction_source_limit_factor compaction_table_size compaction_table_size_multiplier
    compaction_table_size_multiplier_per_level compaction_total_size
    compaction_total_size_multiplier compaction_total_size_multiplier_per_level compression
    disable_buffer_pool disable_block_cache disable_compaction_backoff
    disable_large_batch_transaction iterator_sampling_rate no_sync no_write_merge
    open_files_cache_capacity read_only strict write_buffer write_l0_pause_trigger
    write_l0_slowdown_trigger`),
}, NOTE)
