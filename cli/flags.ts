/**
 * Flag parsing with the semantics of urfave/cli v1 on Go's flag package, which the users of both
 * ipfs-cluster-ctl and ipfs-cluster-service rely on: `-flag` and `--flag`, `--flag value` and `--flag=value`, every alias a full name
 * (`-rmin 2`, `--rmin=2`), bool flags only take `=value`, `--` ends the flags, and within a command
 * the flags written after the arguments are moved before them (urfave's reorderArgs; an unknown
 * flag after an argument therefore stays an argument). Global flags come before the command.
 *
 * @example
 * ```ts
 * const p = parseFlags(PIN_ADD_FLAGS, ['Qm…', '--name', 'x', '-r', '2'], { reorder: true })
 * p.string('name') // 'x'; p.args // ['Qm…']
 * ```
 */
import { parseDuration } from '../src/types/duration.ts'

/** Kinds of flag values (urfave's BoolFlag, StringFlag, IntFlag, DurationFlag, StringSliceFlag). */
export type FlagKind = 'bool' | 'string' | 'int' | 'duration' | 'stringSlice'

/** One flag: its names (the first is the canonical one), kind, help text, default. */
export interface FlagDef {
  names: string[]
  kind: FlagKind
  usage: string
  default?: string | number | boolean
  envVar?: string
  hidden?: boolean
  /** The value's name in help texts (urfave's back-quoted word in the usage); default `value`. */
  placeholder?: string
}

/** A usage error: printed as one line on stderr, exit 1. */
export class UsageError extends Error {
  override name = 'UsageError'
}

/** The parsed command line of one (sub)command. */
export interface ParsedFlags {
  /** Positional arguments. */
  args: string[]
  /** Whether the flag (by any of its names) was given. */
  isSet(name: string): boolean
  bool(name: string): boolean
  string(name: string): string
  int(name: string): number
  /** Duration flags, in milliseconds. */
  duration(name: string): number
  strings(name: string): string[]
}

function isFlagArg(defs: FlagDef[], arg: string): boolean {
  if (arg === '-' || arg === '--' || !arg.startsWith('-')) return false
  const name = arg.replace(/^--?/, '').split('=')[0]
  return defs.some((d) => d.names.includes(name))
}

/** urfave/cli v1 reorderArgs: known flags (and the value after each) go first. */
export function reorderArgs(defs: FlagDef[], args: string[]): string[] {
  const flags: string[] = []
  let rest: string[] = []
  let maybeValue = false
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]
    if (maybeValue && !isFlagArg(defs, arg)) {
      maybeValue = false
      flags.push(arg)
    } else if (arg === '--') {
      rest = ['--', ...rest, ...args.slice(i + 1)]
      break
    } else if (isFlagArg(defs, arg)) {
      flags.push(arg)
      maybeValue = !arg.includes('=')
    } else {
      rest.push(arg)
    }
  }
  return [...flags, ...rest]
}

/** Go's strconv.ParseBool. */
function parseBool(s: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(s)) return true
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(s)) return false
  return undefined
}

/** Go's strconv.ParseInt(s, 0, 64) for the values a CLI meets. */
function parseGoInt(s: string): number | undefined {
  const m = /^([+-]?)(0x[0-9a-f_]+|0o[0-7_]+|0b[01_]+|0[0-7_]*|[1-9][0-9_]*)$/i.exec(s)
  if (!m) return undefined
  let body = m[2].replaceAll('_', '')
  let radix = 10
  if (/^0x/i.test(body)) [radix, body] = [16, body.slice(2)]
  else if (/^0o/i.test(body)) [radix, body] = [8, body.slice(2)]
  else if (/^0b/i.test(body)) [radix, body] = [2, body.slice(2)]
  else if (body.length > 1 && body.startsWith('0')) [radix, body] = [8, body.slice(1)]
  const n = parseInt(body || '0', radix)
  return m[1] === '-' ? -n : n
}

/** Go's time.ParseDuration, in milliseconds; undefined when invalid. */
export function parseGoDuration(s: string): number | undefined {
  try {
    return parseDuration(s)
  } catch {
    return undefined
  }
}

type Value = boolean | string | number | string[]

/**
 * Parses `args` against `defs` like Go's FlagSet.Parse: flags first, parsing stops at the first
 * positional argument. With `reorder`, urfave's reordering is applied first. Environment variables
 * of flags with `envVar` act as defaults.
 */
export function parseFlags(
  defs: FlagDef[],
  argv: string[],
  opts: { reorder?: boolean; env?: Record<string, string> } = {},
): ParsedFlags {
  const args = opts.reorder ? reorderArgs(defs, argv) : [...argv]
  const byName = new Map<string, FlagDef>()
  for (const d of defs) for (const n of d.names) byName.set(n, d)
  const values = new Map<FlagDef, Value>()
  const setBy = new Map<FlagDef, string>()

  const convert = (d: FlagDef, name: string, raw: string): Value => {
    switch (d.kind) {
      case 'int': {
        const n = parseGoInt(raw)
        if (n === undefined) {
          throw new UsageError(`invalid value "${raw}" for flag -${name}: parse error`)
        }
        return n
      }
      case 'duration': {
        const n = parseGoDuration(raw)
        if (n === undefined) {
          throw new UsageError(`invalid value "${raw}" for flag -${name}: parse error`)
        }
        return n
      }
      case 'stringSlice':
        return [...((values.get(d) as string[] | undefined) ?? []), raw]
      default:
        return raw
    }
  }

  // Environment defaults (urfave applies them when the flag is declared).
  for (const d of defs) {
    const ev = d.envVar ? opts.env?.[d.envVar] : undefined
    if (ev === undefined || ev === '') continue
    if (d.kind === 'bool') {
      const b = parseBool(ev)
      if (b !== undefined) values.set(d, b)
    } else {
      values.set(d, d.kind === 'stringSlice' ? ev.split(',') : convert(d, d.names[0], ev))
    }
  }

  let i = 0
  for (; i < args.length; i++) {
    const arg = args[i]
    if (arg.length < 2 || arg[0] !== '-') break
    let minuses = 1
    if (arg[1] === '-') {
      minuses = 2
      if (arg.length === 2) {
        i++ // "--" terminates the flags
        break
      }
    }
    let name = arg.slice(minuses)
    if (name.length === 0 || name[0] === '-' || name[0] === '=') {
      throw new UsageError(`bad flag syntax: ${arg}`)
    }
    let value: string | undefined
    const eq = name.indexOf('=')
    if (eq >= 0) {
      value = name.slice(eq + 1)
      name = name.slice(0, eq)
    }
    const d = byName.get(name)
    if (!d) throw new UsageError(`flag provided but not defined: -${name}`)
    const prev = setBy.get(d)
    if (prev !== undefined && prev !== name) {
      throw new UsageError(`Cannot use two forms of the same flag: ${prev} ${name}`)
    }
    setBy.set(d, name)
    if (d.kind === 'bool') {
      if (value === undefined) values.set(d, true)
      else {
        const b = parseBool(value)
        if (b === undefined) {
          throw new UsageError(`invalid boolean value "${value}" for -${name}: parse error`)
        }
        values.set(d, b)
      }
      continue
    }
    if (value === undefined) {
      if (i + 1 >= args.length) throw new UsageError(`flag needs an argument: -${name}`)
      value = args[++i]
    }
    values.set(d, convert(d, name, value))
  }
  const positional = args.slice(i)

  const lookup = (name: string): FlagDef => {
    const d = byName.get(name)
    if (!d) throw new Error(`undeclared flag ${name}`)
    return d
  }
  const get = (name: string): Value | undefined => {
    const d = lookup(name)
    return values.has(d) ? values.get(d) : d.default
  }
  return {
    args: positional,
    isSet: (name) => setBy.has(lookup(name)),
    bool: (name) => get(name) === true,
    string: (name) => String(get(name) ?? ''),
    int: (name) => Number(get(name) ?? 0),
    duration: (name) => Number(get(name) ?? 0),
    strings: (name) => (get(name) as string[] | undefined) ?? [],
  }
}
