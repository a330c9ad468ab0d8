/**
 * A small schema for one service.json section: each key's kind, default and checks, from which
 * come defaults, validated loading (errors name `section.key` and what is allowed), JSON output
 * in Go's forms (durations as "2m0s") and `CLUSTER_*` environment overrides.
 *
 * Keys are matched as Go's encoding/json matches struct fields: exactly, else case-insensitively.
 * A key the section does not know is an error that suggests the nearest known key; keys the
 * reference knows but this implementation does not act on are accepted and reported through the
 * `warn` callback of `load` (legacy keys, and `ignored` fields holding a non-default value).
 *
 * @example
 * ```ts
 * const section = defineSection('restapi', 'RESTAPI', {
 *   read_timeout: duration(0),
 *   http_listen_multiaddress: maddrList(['/ip4/127.0.0.1/tcp/9094']),
 * })
 * const cfg = section.load({ read_timeout: '30s' }, Deno.env.toObject(), console.warn)
 * ```
 */
import { multiaddr } from '@multiformats/multiaddr'
import { ConfigError } from '../errors.ts'
import { formatDuration, parseDuration } from '../types/duration.ts'
import { closest } from '../util/suggest.ts'

/** Receives one line per accepted-but-ignored key, at load. */
export type Warn = (msg: string) => void

/** One key of a section. */
export interface Field<T> {
  kind: string
  default: T
  /** Parses a JSON value (already known to be present). Throws a message on bad input. */
  parse(v: unknown, warn?: Warn): T
  /** Parses an environment variable's text. */
  parseEnv(s: string): T
  /** The JSON form written to service.json. */
  toJSON(v: T): unknown
  /** Extra validation; returns an error message or undefined. */
  check?(v: T): string | undefined
  /** Leave the key out of service.json when it holds its default (Go's omitempty habit). */
  omitDefault?: boolean
  /** Keep the key out of service.json entirely unless set (hidden options). */
  hidden?: boolean
  /** When the key is absent from a loaded file, use this instead of the default (Go's zero). */
  absent?: T
  /**
   * Loaded and validated but not acted on by this implementation: why. A value other than the
   * default is reported at load (the user asked for something this peer does not do).
   */
  ignored?: string
}

type Fields = Record<string, Field<unknown>>
/** The typed config a section's fields produce. */
export type ConfigOf<F extends Fields> = { [K in keyof F]: F[K] extends Field<infer T> ? T : never }

/** A section: defaults, load, toJSON. */
export interface Section<F extends Fields> {
  name: string
  fields: F
  /** Keys the reference knows that are not fields here (legacy keys): key → what happens. */
  legacy: Readonly<Record<string, string>>
  /** Set when the section configures a component this implementation does not have. */
  unimplemented?: string
  defaults(): ConfigOf<F>
  /**
   * Loads from parsed JSON (undefined or null = section absent) and applies env overrides.
   * `warn` receives one line per accepted key this implementation does not act on.
   */
  load(json: unknown, env?: Record<string, string>, warn?: Warn): ConfigOf<F>
  toJSON(cfg: ConfigOf<F>): Record<string, unknown>
  /** The env var that overrides a key, e.g. CLUSTER_RESTAPI_READTIMEOUT. */
  envName(key: string): string
}

/** Options of a section beyond its fields. */
export interface SectionOptions<F extends Fields> {
  /** Cross-key validation; returns an error message or undefined. */
  validate?: (cfg: ConfigOf<F>) => string | undefined
  /**
   * Keys the reference knows that this section does not model (legacy keys of older releases):
   * key → the line reported when a file carries it. Their values are not read.
   */
  legacy?: Record<string, string>
  /** Advice on a loaded config that is valid but deserves a warning (e.g. an empty secret). */
  advise?: (cfg: ConfigOf<F>) => string | undefined
  /**
   * The section configures a component this implementation does not have: what that means.
   * Reported whenever a file holds the section (its keys are still checked).
   */
  unimplemented?: string
}

/**
 * The key of `names` that `key` means, as Go's encoding/json matches a JSON key to a struct
 * field: the exact name, else a case-insensitive match; undefined when none.
 */
export function matchKey(key: string, names: Iterable<string>): string | undefined {
  const list = [...names]
  if (list.includes(key)) return key
  const folded = key.toLowerCase()
  return list.find((n) => n.toLowerCase() === folded)
}

/**
 * The error for a name nobody knows in `where` (a section path, '' at the top): the nearest known
 * name when one is close enough to be a typo, else the allowed names. `kind` is what the name is
 * (key, component, section).
 *
 * @example
 * ```ts
 * unknownName('cluster', 'peer_name', 'key', ['peername', 'secret']).message
 * // 'cluster.peer_name: unknown key; did you mean "peername"?'
 * ```
 */
export function unknownName(
  where: string,
  name: string,
  kind: string,
  known: readonly string[],
): ConfigError {
  const path = where ? `${where}.${name}` : name
  const near = closest(name, known)
  return new ConfigError(
    near
      ? `${path}: unknown ${kind}; did you mean "${near}"?`
      : `${path}: unknown ${kind} (allowed: ${known.join(', ')})`,
  )
}

/** Defines a section. `envPrefix` is '' for the `cluster` section (CLUSTER_<KEY>). */
export function defineSection<F extends Fields>(
  name: string,
  envPrefix: string,
  fields: F,
  opts: SectionOptions<F> = {},
): Section<F> {
  const legacy = opts.legacy ?? {}
  const known = [...Object.keys(fields), ...Object.keys(legacy)]
  const envName = (key: string) =>
    `CLUSTER_${envPrefix ? envPrefix + '_' : ''}${key.replaceAll('_', '').toUpperCase()}`
  const defaults = () => {
    const out: Record<string, unknown> = {}
    for (const [k, f] of Object.entries(fields)) out[k] = structuredClone(f.default)
    return out as ConfigOf<F>
  }
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b)
  return {
    name,
    fields,
    legacy,
    unimplemented: opts.unimplemented,
    defaults,
    envName,
    load(json, env = {}, warn = () => {}) {
      const cfg = defaults() as Record<string, unknown>
      const fromEnv = new Set<string>()
      if (json !== undefined && json !== null) {
        if (typeof json !== 'object' || Array.isArray(json)) {
          throw new ConfigError(`${name}: must be a JSON object`)
        }
        // JSON key → field, in document order (a later duplicate wins, as in Go).
        const given = new Map<string, unknown>()
        for (const [key, value] of Object.entries(json)) {
          const k = matchKey(key, known)
          if (k === undefined) throw unknownName(name, key, 'key', known)
          if (Object.hasOwn(legacy, k)) warn(`${name}.${k}: ${legacy[k]}`)
          else if (value !== undefined) given.set(k, value)
        }
        for (const [k, f] of Object.entries(fields)) {
          if (!given.has(k)) {
            if (f.absent !== undefined) cfg[k] = structuredClone(f.absent)
            continue
          }
          try {
            cfg[k] = f.parse(given.get(k), warn)
          } catch (err) {
            // A nested section's error already names its full `section.key.subkey`.
            const msg = (err as Error).message
            const named = msg.startsWith(`${name}.${k}.`) || msg.startsWith(`${name}.${k}:`)
            throw new ConfigError(named ? msg : `${name}.${k}: ${msg}`)
          }
        }
      }
      for (const [k, f] of Object.entries(fields)) {
        const ev = env[envName(k)]
        if (ev === undefined) continue
        try {
          cfg[k] = f.parseEnv(ev)
          fromEnv.add(k)
        } catch (err) {
          throw new ConfigError(`${envName(k)} (${name}.${k}): ${(err as Error).message}`)
        }
      }
      for (const [k, f] of Object.entries(fields)) {
        const msg = f.check?.(cfg[k])
        const where = fromEnv.has(k) ? `${envName(k)} (${name}.${k})` : `${name}.${k}`
        if (msg) throw new ConfigError(`${where}: ${msg}`)
      }
      const msg = opts.validate?.(cfg as ConfigOf<F>)
      if (msg) throw new ConfigError(`${name}: ${msg}`)
      if (opts.unimplemented) {
        // One line for the whole section, not one per key.
        if (json !== undefined && json !== null) warn(`${name}: ${opts.unimplemented}`)
      } else {
        for (const [k, f] of Object.entries(fields)) {
          if (f.ignored && !same(cfg[k], f.default)) {
            warn(`${name}.${k}: not implemented here, the value is ignored (${f.ignored})`)
          }
        }
      }
      const advice = opts.advise?.(cfg as ConfigOf<F>)
      if (advice) warn(`${name}: ${advice}`)
      return cfg as ConfigOf<F>
    },
    toJSON(cfg) {
      const out: Record<string, unknown> = {}
      for (const [k, f] of Object.entries(fields)) {
        const v = (cfg as Record<string, unknown>)[k]
        if (f.hidden && same(v, f.default)) continue
        if (f.omitDefault && same(v, f.default)) continue
        out[k] = f.toJSON(v)
      }
      return out
    },
  }
}

const describe = (v: unknown) => (typeof v === 'string' ? JSON.stringify(v) : String(v))

/** A string key; `allowed` restricts it to a set of values. */
export function str(def: string, allowed?: readonly string[]): Field<string> {
  const check = (v: string) =>
    allowed && !allowed.includes(v)
      ? `invalid value ${describe(v)} (allowed: ${
        allowed.map((a) => JSON.stringify(a)).join(', ')
      })`
      : undefined
  return {
    kind: 'string',
    default: def,
    parse(v) {
      if (typeof v !== 'string') throw new Error(`must be a string, got ${describe(v)}`)
      return v
    },
    parseEnv: (s) => s,
    toJSON: (v) => v,
    check,
  }
}

/** An integer key with optional bounds. Go's habit: 0 in a file may mean "keep the default". */
export function int(
  def: number,
  opts: { min?: number; max?: number; zeroIsDefault?: boolean } = {},
): Field<number> {
  const parse = (v: unknown) => {
    const n = typeof v === 'string' && /^-?\d+$/.test(v.trim()) ? Number(v) : v
    if (typeof n !== 'number' || !Number.isInteger(n)) {
      throw new Error(`must be an integer, got ${describe(v)}`)
    }
    return opts.zeroIsDefault && n === 0 ? def : n
  }
  return {
    kind: 'int',
    default: def,
    parse,
    parseEnv: parse,
    toJSON: (v) => v,
    check(v) {
      if (opts.min !== undefined && v < opts.min) return `must be at least ${opts.min}, got ${v}`
      if (opts.max !== undefined && v > opts.max) return `must be at most ${opts.max}, got ${v}`
    },
  }
}

/** A number key (floats allowed). */
export function num(def: number, opts: { min?: number; max?: number } = {}): Field<number> {
  const parse = (v: unknown) => {
    const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v
    if (typeof n !== 'number' || !Number.isFinite(n)) {
      throw new Error(`must be a number, got ${describe(v)}`)
    }
    return n
  }
  return {
    kind: 'number',
    default: def,
    parse,
    parseEnv: parse,
    toJSON: (v) => v,
    check(v) {
      if (opts.min !== undefined && v < opts.min) return `must be at least ${opts.min}, got ${v}`
      if (opts.max !== undefined && v > opts.max) return `must be at most ${opts.max}, got ${v}`
    },
  }
}

/** A boolean key. `absent` is what a file without the key means (Go loads a missing bool as false). */
export function bool(def: boolean, absent?: boolean): Field<boolean> {
  return {
    kind: 'bool',
    default: def,
    absent,
    parse(v) {
      if (typeof v !== 'boolean') throw new Error(`must be true or false, got ${describe(v)}`)
      return v
    },
    parseEnv(s) {
      const t = s.trim().toLowerCase()
      if (t === 'true' || t === '1') return true
      if (t === 'false' || t === '0') return false
      throw new Error(`must be true or false, got ${JSON.stringify(s)}`)
    },
    toJSON: (v) => v,
  }
}

/** A Go duration string ("2m0s"), held in milliseconds. */
export function duration(defMs: number, opts: { min?: number; positive?: boolean } = {}): Field<
  number
> {
  const parse = (v: unknown) => {
    if (typeof v !== 'string') {
      throw new Error(`must be a duration string like "30s" or "2m0s", got ${describe(v)}`)
    }
    try {
      return parseDuration(v)
    } catch {
      throw new Error(`must be a duration string like "30s" or "2m0s", got ${JSON.stringify(v)}`)
    }
  }
  return {
    kind: 'duration',
    default: defMs,
    parse,
    parseEnv: parse,
    toJSON: (v) => formatDuration(v),
    check(v) {
      if (opts.positive && v <= 0) return `must be a positive duration, got ${formatDuration(v)}`
      if (opts.min !== undefined && v < opts.min) {
        return `must be at least ${formatDuration(opts.min)}, got ${formatDuration(v)}`
      }
      if (v < 0) return `must not be negative, got ${formatDuration(v)}`
    },
  }
}

function parseMaddr(v: unknown): string {
  if (typeof v !== 'string' || !v.startsWith('/')) {
    throw new Error(`must be a multiaddress like "/ip4/127.0.0.1/tcp/9094", got ${describe(v)}`)
  }
  // `/unix/<path>` is kept as is: the reference accepts a plain path there, which the JS
  // multiaddr parser would want URL-encoded.
  if (v.startsWith('/unix/')) return v
  try {
    multiaddr(v)
  } catch (err) {
    throw new Error(`invalid multiaddress ${JSON.stringify(v)}: ${(err as Error).message}`)
  }
  return v
}

/** One multiaddress string. */
export function maddr(def: string): Field<string> {
  return {
    kind: 'multiaddr',
    default: def,
    parse: parseMaddr,
    parseEnv: parseMaddr,
    toJSON: (v) => v,
  }
}

/** A list of multiaddresses; a single string is accepted too, as in the reference. */
export function maddrList(def: string[]): Field<string[]> {
  const parse = (v: unknown) => {
    if (typeof v === 'string') return v === '' ? [] : v.split(',').map((s) => parseMaddr(s.trim()))
    if (!Array.isArray(v)) {
      throw new Error(`must be a multiaddress or a list of them, got ${describe(v)}`)
    }
    return v.map(parseMaddr)
  }
  return { kind: 'multiaddrs', default: def, parse, parseEnv: parse, toJSON: (v) => v }
}

/** A list of strings (env: comma separated). */
export function strList(def: string[] | null): Field<string[] | null> {
  const parse = (v: unknown) => {
    if (v === null) return null
    if (!Array.isArray(v) || v.some((e) => typeof e !== 'string')) {
      throw new Error(`must be a list of strings, got ${JSON.stringify(v)}`)
    }
    return v as string[]
  }
  return {
    kind: 'strings',
    default: def,
    parse,
    parseEnv: (s) => (s === '' ? [] : s.split(',').map((x) => x.trim())),
    toJSON: (v) => v,
  }
}

/** A map of string to string (env: `k:v,k2:v2`). `nullable` allows null (e.g. auth off). */
export function strMap(
  def: Record<string, string> | null,
  opts: { nullable?: boolean; nonEmpty?: boolean } = {},
): Field<Record<string, string> | null> {
  const parse = (v: unknown) => {
    if (v === null && opts.nullable) return null
    if (
      typeof v !== 'object' || v === null || Array.isArray(v) ||
      Object.values(v).some((x) => typeof x !== 'string')
    ) {
      throw new Error(`must be an object of strings${opts.nullable ? ' or null' : ''}`)
    }
    return v as Record<string, string>
  }
  return {
    kind: 'map',
    default: def,
    parse,
    parseEnv(s) {
      const out: Record<string, string> = {}
      for (const pair of s.split(',')) {
        if (!pair) continue
        const i = pair.indexOf(':')
        if (i < 0) throw new Error(`must be a list of key:value pairs, got ${JSON.stringify(s)}`)
        out[pair.slice(0, i)] = pair.slice(i + 1)
      }
      return out
    },
    toJSON: (v) => v,
    check: (v) =>
      opts.nonEmpty && v !== null && Object.keys(v).length === 0
        ? 'must not be an empty object (use null to disable)'
        : undefined,
  }
}

/** An opaque JSON value kept as is (options of datastores we do not interpret). */
export function opaque(def: unknown): Field<unknown> {
  return {
    kind: 'json',
    default: def,
    parse: (v) => v,
    parseEnv: (s) => JSON.parse(s),
    toJSON: (v) => v,
  }
}

/** A nested object with its own fields (e.g. cluster.connection_manager). */
export function nested<F extends Fields>(name: string, fields: F): Field<ConfigOf<F>> {
  const inner = defineSection(name, '', fields)
  return {
    kind: 'object',
    default: inner.defaults(),
    // The inner section is named `section.key`, so its errors name `section.key.subkey`.
    parse: (v, warn) => inner.load(v, {}, warn),
    parseEnv: (s) => inner.load(JSON.parse(s)),
    toJSON: (v) => inner.toJSON(v),
  }
}

/**
 * The key layout of a section this implementation accepts but does not run (a component of the
 * reference it does not have): `true` is a key with any value, an object a nested object, a
 * one-element array a list of such objects.
 */
export type KeyTree = { readonly [key: string]: true | KeyTree | readonly [KeyTree] }

/** A section whose keys are checked against the reference's and whose values are ignored. */
export interface IgnoredSection {
  name: string
  keys: KeyTree
  /** What a file holding the section gets, reported at load. */
  note: string
  /** Throws ConfigError naming the first key nobody knows (with the nearest known one). */
  check(json: unknown): void
}

/**
 * Defines a section the reference has and this implementation does not run.
 *
 * @example
 * ```ts
 * const monbasic = ignoredSection('monitor.monbasic', { check_interval: true }, 'legacy, ignored')
 * monbasic.check({ check_intervall: '15s' }) // throws: … did you mean "check_interval"?
 * ```
 */
export function ignoredSection(name: string, keys: KeyTree, note: string): IgnoredSection {
  const walk = (path: string, v: unknown, tree: KeyTree) => {
    // null stands for an absent value, as in Go.
    if (v === null || v === undefined) return
    if (typeof v !== 'object' || Array.isArray(v)) {
      throw new ConfigError(`${path}: must be a JSON object`)
    }
    const known = Object.keys(tree)
    for (const [key, value] of Object.entries(v)) {
      const k = matchKey(key, known)
      if (k === undefined) throw unknownName(path, key, 'key', known)
      const sub = tree[k]
      if (sub === true) continue
      if (!Array.isArray(sub)) {
        walk(`${path}.${k}`, value, sub as KeyTree)
        continue
      }
      if (value === null) continue
      if (!Array.isArray(value)) throw new ConfigError(`${path}.${k}: must be a JSON list`)
      value.forEach((item, i) => walk(`${path}.${k}[${i}]`, item, sub[0]))
    }
  }
  return { name, keys, note, check: (json) => walk(name, json, keys) }
}
