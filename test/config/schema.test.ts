import assert from 'node:assert/strict'
import {
  bool,
  defineSection,
  duration,
  ignoredSection,
  int,
  maddr,
  maddrList,
  nested,
  num,
  opaque,
  str,
  strList,
  strMap,
} from '../../src/config/schema.ts'
import { ConfigError } from '../../src/errors.ts'

const section = defineSection('comp.x', 'X', {
  mode: str('a', ['a', 'b']),
  count: int(10, { min: 1, zeroIsDefault: true }),
  limit: int(5, { min: 0, max: 9 }),
  ratio: num(0.5, { min: 0, max: 1 }),
  flag: bool(true, false),
  plain: bool(true),
  wait: duration(2000, { positive: true }),
  delay: duration(0),
  listen: maddrList(['/ip4/127.0.0.1/tcp/1']),
  node: maddr('/ip4/127.0.0.1/tcp/5001'),
  names: strList([]),
  tags: strMap({ group: 'default' }),
  auth: strMap(null, { nullable: true, nonEmpty: true }),
  inner: nested('comp.x.inner', { high: int(4, { min: 1 }), ttl: duration(1000) }),
  blob: opaque({ k: 1 }),
  hidden_key: { ...str(''), hidden: true },
  optional: { ...str('d'), omitDefault: true },
})

/** The ConfigError message of loading `json` (with `env`), or '' when it loads. */
function loadError(json: unknown, env: Record<string, string> = {}): string {
  try {
    section.load(json, env)
    return ''
  } catch (err) {
    assert.ok(err instanceof ConfigError, `not a ConfigError: ${err}`)
    return (err as Error).message
  }
}

Deno.test('an absent section loads its defaults; defaults() are fresh copies', () => {
  const a = section.load(undefined)
  assert.deepEqual(a, section.defaults())
  a.tags!.group = 'changed'
  assert.equal(section.defaults().tags!.group, 'default')
})

Deno.test('toJSON writes Go forms: durations as strings, one address as a string, omitted keys', () => {
  const json = section.toJSON(section.defaults())
  assert.equal(json.wait, '2s')
  assert.equal(json.delay, '0s')
  // Always a list; the reference writes a single address as a plain string, and reads both.
  assert.deepEqual(json.listen, ['/ip4/127.0.0.1/tcp/1'])
  const two = section.toJSON({
    ...section.defaults(),
    listen: ['/ip4/1.1.1.1/tcp/1', '/ip4/1.1.1.1/tcp/2'],
  })
  assert.deepEqual(two.listen, ['/ip4/1.1.1.1/tcp/1', '/ip4/1.1.1.1/tcp/2'])
  assert.deepEqual(section.toJSON({ ...section.defaults(), listen: [] }).listen, [])
  assert.deepEqual(json.inner, { high: 4, ttl: '1s' })
  assert.ok(!('hidden_key' in json))
  assert.ok(!('optional' in json))
  const set = section.toJSON({ ...section.defaults(), hidden_key: 'h', optional: 'o' })
  assert.equal(set.hidden_key, 'h')
  assert.equal(set.optional, 'o')
})

Deno.test('JSON → load → toJSON → load is stable', () => {
  const cfg = section.load({
    mode: 'b',
    count: 3,
    wait: '1m30s',
    listen: ['/ip4/0.0.0.0/tcp/9', '/ip6/::/tcp/9'],
    names: ['x'],
    auth: { u: 'p' },
    inner: { high: 8 },
  })
  const again = section.load(JSON.parse(JSON.stringify(section.toJSON(cfg))))
  assert.deepEqual(again, cfg)
  assert.equal(cfg.wait, 90_000)
  assert.equal(cfg.inner.ttl, 1000)
})

Deno.test('Go load habits: 0 keeps an int default, an absent bool is false when so declared', () => {
  const cfg = section.load({ count: 0 })
  assert.equal(cfg.count, 10)
  assert.equal(cfg.flag, false, 'absent bool with absent=false')
  assert.equal(cfg.plain, true, 'absent bool without absent keeps its default')
  assert.deepEqual(section.load({ listen: '/ip4/1.2.3.4/tcp/5' }).listen, ['/ip4/1.2.3.4/tcp/5'])
  assert.deepEqual(section.load({ listen: '' }).listen, [])
})

Deno.test('every invalid value names section.key and what is allowed', () => {
  const cases: [unknown, RegExp][] = [
    [{ mode: 'c' }, /^comp\.x\.mode: invalid value "c" \(allowed: "a", "b"\)$/],
    [{ mode: 1 }, /^comp\.x\.mode: must be a string/],
    [{ count: 'many' }, /^comp\.x\.count: must be an integer, got "many"$/],
    [{ count: 1.5 }, /^comp\.x\.count: must be an integer/],
    [{ count: -2 }, /^comp\.x\.count: must be at least 1, got -2$/],
    [{ limit: 10 }, /^comp\.x\.limit: must be at most 9, got 10$/],
    [{ ratio: 2 }, /^comp\.x\.ratio: must be at most 1/],
    [{ ratio: 'x' }, /^comp\.x\.ratio: must be a number/],
    [{ flag: 'yes' }, /^comp\.x\.flag: must be true or false/],
    [{ wait: 5 }, /^comp\.x\.wait: must be a duration string like "30s"/],
    [{ wait: '5 parsecs' }, /^comp\.x\.wait: must be a duration string/],
    [{ wait: '0s' }, /^comp\.x\.wait: must be a positive duration, got 0s$/],
    [{ delay: '-1s' }, /^comp\.x\.delay: must not be negative, got -1s$/],
    [{ listen: 'tcp:1' }, /^comp\.x\.listen: must be a multiaddress like/],
    [{ listen: ['/ip4/1.2.3.4/tcp/abc'] }, /^comp\.x\.listen: invalid multiaddress/],
    [{ listen: 7 }, /^comp\.x\.listen: must be a multiaddress or a list of them/],
    [{ node: '/ip4/999.1.1.1/tcp/1' }, /^comp\.x\.node: invalid multiaddress/],
    [{ node: '/nope/1' }, /^comp\.x\.node: invalid multiaddress/],
    [{ names: 'a' }, /^comp\.x\.names: must be a list of strings/],
    [{ tags: [] }, /^comp\.x\.tags: must be an object of strings$/],
    [{ tags: { a: 1 } }, /^comp\.x\.tags: must be an object of strings$/],
    [{ auth: {} }, /^comp\.x\.auth: must not be an empty object \(use null to disable\)$/],
    [{ inner: { high: 'x' } }, /^comp\.x\.inner\.high: must be an integer, got "x"$/],
    [{ inner: { bogus: 1 } }, /^comp\.x\.inner\.bogus: unknown key \(allowed: high, ttl\)$/],
    [{ inner: 3 }, /^comp\.x\.inner: must be a JSON object$/],
    [{ bogus: 1 }, /^comp\.x\.bogus: unknown key \(allowed: mode, count, /],
    [{ constructor: 1 }, /^comp\.x\.constructor: unknown key/],
    [[], /^comp\.x: must be a JSON object$/],
    ['x', /^comp\.x: must be a JSON object$/],
  ]
  for (const [json, re] of cases) {
    const msg = loadError(json)
    assert.match(msg, re, JSON.stringify(json))
  }
})

Deno.test('unix socket addresses are accepted as the reference accepts them', () => {
  assert.equal(section.load({ node: '/unix/tmp/ipfs.sock' }).node, '/unix/tmp/ipfs.sock')
  for (const a of ['/dns4/localhost/tcp/5001', '/ip6/::1/tcp/5001', '/ip4/0.0.0.0/udp/9096/quic']) {
    assert.equal(section.load({ node: a }).node, a)
  }
})

Deno.test('env overrides are CLUSTER_<PREFIX>_<KEY without underscores>, applied over the file', () => {
  assert.equal(section.envName('read_header_timeout'), 'CLUSTER_X_READHEADERTIMEOUT')
  const top = defineSection('cluster', '', { peer_name: str('') })
  assert.equal(top.envName('peer_name'), 'CLUSTER_PEERNAME')
  const cfg = section.load({ mode: 'a', wait: '1s' }, {
    CLUSTER_X_MODE: 'b',
    CLUSTER_X_WAIT: '2m0s',
    CLUSTER_X_COUNT: '7',
    CLUSTER_X_RATIO: '0.25',
    CLUSTER_X_FLAG: 'true',
    CLUSTER_X_PLAIN: '0',
    CLUSTER_X_LISTEN: '/ip4/1.1.1.1/tcp/1, /ip4/1.1.1.1/tcp/2',
    CLUSTER_X_NAMES: 'a, b',
    CLUSTER_X_TAGS: 'group:g1,zone:z',
    CLUSTER_X_INNER: '{"high":9}',
    CLUSTER_X_BLOB: '[1,2]',
  })
  assert.equal(cfg.mode, 'b')
  assert.equal(cfg.wait, 120_000)
  assert.equal(cfg.count, 7)
  assert.equal(cfg.ratio, 0.25)
  assert.equal(cfg.flag, true)
  assert.equal(cfg.plain, false)
  assert.deepEqual(cfg.listen, ['/ip4/1.1.1.1/tcp/1', '/ip4/1.1.1.1/tcp/2'])
  assert.deepEqual(cfg.names, ['a', 'b'])
  assert.deepEqual(cfg.tags, { group: 'g1', zone: 'z' })
  assert.equal(cfg.inner.high, 9)
  assert.deepEqual(cfg.blob, [1, 2])
  // Env also applies when the section is absent from the file.
  assert.equal(section.load(undefined, { CLUSTER_X_MODE: 'b' }).mode, 'b')
})

Deno.test('a bad env value names the variable and the key; checks run after env', () => {
  assert.equal(
    loadError({}, { CLUSTER_X_WAIT: 'soon' }),
    'CLUSTER_X_WAIT (comp.x.wait): must be a duration string like "30s" or "2m0s", got "soon"',
  )
  assert.match(loadError({}, { CLUSTER_X_FLAG: 'maybe' }), /^CLUSTER_X_FLAG \(comp\.x\.flag\): /)
  assert.match(loadError({}, { CLUSTER_X_TAGS: 'novalue' }), /^CLUSTER_X_TAGS \(comp\.x\.tags\): /)
  // A value from the environment that fails a check names the variable too.
  assert.equal(
    loadError({}, { CLUSTER_X_MODE: 'z' }),
    'CLUSTER_X_MODE (comp.x.mode): invalid value "z" (allowed: "a", "b")',
  )
  assert.equal(loadError({ mode: 'z' }), 'comp.x.mode: invalid value "z" (allowed: "a", "b")')
})

Deno.test('the section validator runs last and is prefixed with the section name', () => {
  const s = defineSection(
    'v',
    'V',
    { lo: int(1), hi: int(2) },
    { validate: (c) => (c.lo > c.hi ? 'lo must be at most hi' : undefined) },
  )
  assert.throws(() => s.load({ lo: 3 }), {
    name: 'ConfigError',
    message: 'v: lo must be at most hi',
  })
  assert.equal(s.load({ lo: 3 }, { CLUSTER_V_HI: '5' }).hi, 5)
})

Deno.test('an unknown key is refused with the nearest known key, else the allowed list', () => {
  assert.equal(loadError({ mdoe: 'a' }), 'comp.x.mdoe: unknown key; did you mean "mode"?')
  assert.equal(loadError({ liste: [] }), 'comp.x.liste: unknown key; did you mean "listen"?')
  assert.equal(
    loadError({ inner: { hihg: 1 } }),
    'comp.x.inner.hihg: unknown key; did you mean "high"?',
  )
  assert.match(loadError({ zzzzzz: 1 }), /^comp\.x\.zzzzzz: unknown key \(allowed: mode, count, /)
  assert.match(loadError({ constructor: 1 }), /^comp\.x\.constructor: unknown key/)
})

Deno.test('keys match as Go matches struct fields: exactly, else case-insensitively', () => {
  assert.equal(section.load({ Mode: 'b' }).mode, 'b')
  assert.equal(section.load({ INNER: { High: 7 } }).inner.high, 7)
  // A later duplicate wins, as in Go's decoder.
  assert.equal(section.load({ mode: 'a', MODE: 'b' }).mode, 'b')
})

Deno.test('legacy keys load and are reported; ignored keys are reported when not default', () => {
  const s = defineSection('comp.y', 'Y', {
    used: int(1),
    later: { ...bool(false), ignored: 'no such feature here' },
  }, { legacy: { old_key: 'an old release only; ignored' } })
  const warnings: string[] = []
  const cfg = s.load({ used: 2, Old_Key: 5, later: false }, {}, (m) => warnings.push(m))
  assert.deepEqual(cfg, { used: 2, later: false })
  assert.deepEqual(warnings, ['comp.y.old_key: an old release only; ignored'])
  warnings.length = 0
  s.load({ later: true }, {}, (m) => warnings.push(m))
  assert.deepEqual(warnings, [
    'comp.y.later: not implemented here, the value is ignored (no such feature here)',
  ])
  assert.throws(() => s.load({ old_ky: 1 }), {
    name: 'ConfigError',
    message: 'comp.y.old_ky: unknown key; did you mean "old_key"?',
  })
})

Deno.test('a section of a component not implemented here: keys checked, presence reported', () => {
  const s = defineSection('comp.z', 'Z', { port: int(1), flag: { ...bool(false), ignored: 'x' } }, {
    unimplemented: 'not implemented here: not started',
  })
  const warnings: string[] = []
  s.load(undefined, {}, (m) => warnings.push(m))
  assert.equal(warnings.length, 0, 'absent: nothing to say')
  s.load({ port: 2, flag: true }, {}, (m) => warnings.push(m))
  assert.deepEqual(warnings, ['comp.z: not implemented here: not started'], 'one line, not per key')
  assert.throws(() => s.load({ prot: 2 }), {
    message: 'comp.z.prot: unknown key; did you mean "port"?',
  })
})

Deno.test('ignoredSection checks key names at every depth and ignores the values', () => {
  const s = ignoredSection('store.kind', {
    folder: true,
    options: { size: true, levels: [{ block_size: true }] },
  }, 'ignored')
  s.check({ folder: 5, Options: { size: 'x', levels: [{ block_size: 1 }, {}] } })
  s.check({ options: null })
  s.check(null)
  assert.throws(() => s.check({ fodler: '' }), {
    name: 'ConfigError',
    message: 'store.kind.fodler: unknown key; did you mean "folder"?',
  })
  assert.throws(() => s.check({ options: { levels: [{}, { block_sizes: 1 }] } }), {
    message: 'store.kind.options.levels[1].block_sizes: unknown key; did you mean "block_size"?',
  })
  assert.throws(() => s.check({ options: { levels: {} } }), {
    message: 'store.kind.options.levels: must be a JSON list',
  })
  assert.throws(() => s.check({ options: 3 }), {
    message: 'store.kind.options: must be a JSON object',
  })
  assert.throws(() => s.check([]), { message: 'store.kind: must be a JSON object' })
})

Deno.test('a key with a dot in it is suggested against as a whole', () => {
  assert.equal(loadError({ 'mo.de': 'a' }), 'comp.x.mo.de: unknown key; did you mean "mode"?')
})
