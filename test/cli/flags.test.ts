/**
 * The urfave/cli v1 + Go flag semantics ctl users rely on.
 */
import { deepEqual, equal, throws } from 'node:assert/strict'
import {
  type FlagDef,
  parseFlags,
  parseGoDuration,
  reorderArgs,
  UsageError,
} from '../../cli/flags.ts'

const DEFS: FlagDef[] = [
  { names: ['replication', 'r'], kind: 'int', usage: '', default: 0 },
  { names: ['name', 'n'], kind: 'string', usage: '', default: '' },
  { names: ['mode'], kind: 'string', usage: '', default: 'recursive' },
  { names: ['metadata'], kind: 'stringSlice', usage: '' },
  { names: ['no-status', 'ns'], kind: 'bool', usage: '' },
  { names: ['wait-limit', 'wl'], kind: 'int', usage: '', default: 0 },
  { names: ['wait-timeout', 'wt'], kind: 'duration', usage: '', default: 0 },
  { names: ['basic-auth'], kind: 'string', usage: '', envVar: 'CLUSTER_CREDENTIALS' },
]

Deno.test('flags: long, short, single and double dash, = and separate values', () => {
  const p = parseFlags(DEFS, ['-r', '2', '--name=x y', '-mode', 'direct', '--ns', 'Qm1'])
  equal(p.int('replication'), 2)
  equal(p.string('name'), 'x y')
  equal(p.string('mode'), 'direct')
  equal(p.bool('no-status'), true)
  deepEqual(p.args, ['Qm1'])
  const q = parseFlags(DEFS, ['--replication=-1', '--wt', '1m30s', '-wl=3'])
  equal(q.int('replication'), -1)
  equal(q.duration('wait-timeout'), 90_000)
  equal(q.int('wait-limit'), 3)
  equal(q.isSet('wait-limit'), true)
  equal(q.isSet('name'), false)
  equal(q.string('mode'), 'recursive') // default
})

Deno.test('flags: parsing stops at the first argument unless reordered', () => {
  const p = parseFlags(DEFS, ['Qm1', '--name', 'x'])
  deepEqual(p.args, ['Qm1', '--name', 'x'])
  equal(p.string('name'), '')
  const r = parseFlags(DEFS, ['Qm1', '--name', 'x', '--ns', 'Qm2'], { reorder: true })
  equal(r.string('name'), 'x')
  equal(r.bool('no-status'), true)
  // A bool flag pulls the next argument along (it "may be a value"), as urfave does.
  deepEqual(r.args, ['Qm2', 'Qm1'])
  deepEqual(reorderArgs(DEFS, ['a', '--name', 'x', 'b']), ['--name', 'x', 'a', 'b'])
  // An unknown flag after an argument is not moved, so it stays an argument (urfave quirk).
  deepEqual(parseFlags(DEFS, ['a', '--bogus'], { reorder: true }).args, ['a', '--bogus'])
  // "--" ends the flags.
  deepEqual(parseFlags(DEFS, ['--', '--name'], { reorder: true }).args, ['--name'])
})

Deno.test('flags: bools take only =value; repeated string slices accumulate', () => {
  const p = parseFlags(DEFS, ['--ns=false', '--metadata', 'a=1', '--metadata=b=2'])
  equal(p.bool('no-status'), false)
  deepEqual(p.strings('metadata'), ['a=1', 'b=2'])
  // "--ns false": false is the first argument.
  deepEqual(parseFlags(DEFS, ['--ns', 'false']).args, ['false'])
})

Deno.test('flags: errors read like Go flag errors', () => {
  const msg = (args: string[]) => {
    try {
      parseFlags(DEFS, args)
    } catch (e) {
      equal(e instanceof UsageError, true)
      return (e as Error).message
    }
    return ''
  }
  equal(msg(['--bogus']), 'flag provided but not defined: -bogus')
  equal(msg(['-r', 'x']), 'invalid value "x" for flag -r: parse error')
  equal(msg(['--name']), 'flag needs an argument: -name')
  equal(msg(['--ns=maybe']), 'invalid boolean value "maybe" for -ns: parse error')
  equal(msg(['--wt', '5']), 'invalid value "5" for flag -wt: parse error')
  equal(msg(['---x']), 'bad flag syntax: ---x')
  equal(msg(['-n', 'a', '--name', 'b']), 'Cannot use two forms of the same flag: n name')
  throws(() => parseFlags(DEFS, ['-r=0x1g']), UsageError)
})

Deno.test('flags: Go integer syntaxes and durations', () => {
  equal(parseFlags(DEFS, ['-r', '0x10']).int('replication'), 16)
  equal(parseFlags(DEFS, ['-r', '010']).int('replication'), 8)
  equal(parseFlags(DEFS, ['-r', '1_000']).int('replication'), 1000)
  equal(parseGoDuration('1h2m3.5s'), 3_723_500)
  equal(parseGoDuration('300ms'), 300)
  equal(parseGoDuration('-1.5h'), -5_400_000)
  equal(parseGoDuration('0'), 0)
  equal(parseGoDuration('5'), undefined)
  equal(parseGoDuration(''), undefined)
})

Deno.test('flags: environment variables are defaults, flags override them', () => {
  const env = { CLUSTER_CREDENTIALS: 'u:p' }
  equal(parseFlags(DEFS, [], { env }).string('basic-auth'), 'u:p')
  equal(parseFlags(DEFS, ['--basic-auth', 'x'], { env }).string('basic-auth'), 'x')
})
