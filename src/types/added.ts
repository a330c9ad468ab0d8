/**
 * One output item of an add (the reference's `AddedOutput`): a file or directory added, a
 * `shard-<n>` or `<name>-clusterDAG` of a sharded add, or, with `progress=true`, a progress item
 * (`bytes` so far, `cid` null). What `POST /add` streams and the REST client decodes.
 *
 * @example
 * ```ts
 * const out: AddedOutput = { name: 'a.txt', cid: 'Qm…', size: 20, allocations: [peer] }
 * ```
 */
export interface AddedOutput {
  name: string
  cid: string | null
  bytes?: number
  size?: number
  allocations?: string[]
}
