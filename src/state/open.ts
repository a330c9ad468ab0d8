/**
 * Where a peer's state lives: `<data folder>/state.kv` (Deno KV). For Raft the data folder is
 * `consensus.raft.data_folder` or `<config folder>/raft` as in the reference. For CRDT it is
 * `<config folder>/crdt`: the reference keeps its CRDT in the datastore's folder (`pebble`,
 * `badger3`, `badger`, `leveldb`), whose files this implementation cannot read, so another name
 * keeps the two apart (docs/compat.md, "CRDT consensus").
 *
 * @example
 * ```ts
 * const state = await openStateFor(configDir, cfg)
 * ```
 */
import { isAbsolute, join } from 'node:path'
import type { ServiceConfig } from '../service_config.ts'
import { openKvFile } from './kv_file.ts'
import { openKvState, type PinState } from './kv_state.ts'

/** The folder of a CRDT peer's database (see the module comment). */
export const CRDT_FOLDER = 'crdt'

/** The data folder of a peer. */
export function dataFolder(configDir: string, cfg: ServiceConfig): string {
  if (cfg.crdt) return join(configDir, CRDT_FOLDER)
  const f = cfg.raft?.data_folder
  if (!f) return join(configDir, 'raft')
  return isAbsolute(f) ? f : join(configDir, f)
}

/** The path of a peer's state database (`<data folder>/state.kv`). */
export function stateDbPath(configDir: string, cfg: ServiceConfig): string {
  return join(dataFolder(configDir, cfg), 'state.kv')
}

/**
 * Opens the peer's state database (creating the folder). The caller owns the handle; consensus
 * keeps its Raft keys in the same database so one commit can hold a log write and its effect.
 */
export async function openStateDb(configDir: string, cfg: ServiceConfig): Promise<Deno.Kv> {
  await Deno.mkdir(dataFolder(configDir, cfg), { recursive: true })
  return await openKvFile(stateDbPath(configDir, cfg))
}

/** Opens the peer's state (creating the folder). */
export async function openStateFor(configDir: string, cfg: ServiceConfig): Promise<PinState> {
  await Deno.mkdir(dataFolder(configDir, cfg), { recursive: true })
  return await openKvState(stateDbPath(configDir, cfg))
}
