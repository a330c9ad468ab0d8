import assert from 'node:assert/strict'
import { logging, nullLogger } from '../../src/util/log.ts'

function capture(spec?: string) {
  const lines: string[] = []
  return { logs: logging(spec, (l) => lines.push(l)), lines }
}

Deno.test('lines are <RFC3339 time>\\t<LEVEL>\\t<facility>\\t<message>', () => {
  const { logs, lines } = capture('info')
  logs.get('cluster').info('ready')
  assert.equal(lines.length, 1)
  const [time, level, facility, msg] = lines[0].split('\t')
  assert.ok(!Number.isNaN(Date.parse(time)), time)
  assert.deepEqual([level, facility, msg], ['INFO', 'cluster', 'ready'])
})

Deno.test('a message is one line: control characters in it are escaped', () => {
  const { logs, lines } = capture('info')
  logs.get('cluster').warn('pin bafy name\r\n2026-01-01T00:00:00Z\tERROR\tforged\tline')
  assert.equal(lines.length, 1)
  assert.equal(lines[0].split('\n').length, 1)
  assert.equal(
    lines[0].split('\t')[3],
    'pin bafy name\\r\\n2026-01-01T00:00:00Z\\tERROR\\tforged\\tline',
  )
})

Deno.test('"info" (the default) drops debug and keeps info, warn, error', () => {
  for (const spec of ['info', undefined, '']) {
    const { logs, lines } = capture(spec)
    const l = logs.get('x')
    l.debug('d')
    l.info('i')
    l.warn('w')
    l.error('e')
    assert.deepEqual(lines.map((s) => s.split('\t')[3]), ['i', 'w', 'e'], String(spec))
  }
})

Deno.test('"cluster:debug,warn": per-facility level plus a default for the others', () => {
  const { logs, lines } = capture('cluster:debug,warn')
  logs.get('cluster').debug('c-debug')
  logs.get('restapi').info('r-info')
  logs.get('restapi').warn('r-warn')
  assert.deepEqual(lines.map((s) => s.split('\t').slice(1).join(' ')), [
    'DEBUG cluster c-debug',
    'WARN restapi r-warn',
  ])
  const order = capture('WARN, pintracker:DEBUG')
  order.logs.get('pintracker').debug('x')
  order.logs.get('other').info('y')
  assert.equal(order.lines.length, 1)
  // Go's zap spelling "warning" is accepted.
  const w = capture('warning')
  w.logs.get('a').info('no')
  w.logs.get('a').warn('yes')
  assert.equal(w.lines.length, 1)
})

Deno.test('an invalid level or format is an error naming the allowed levels', () => {
  assert.throws(
    () => logging('verbose'),
    /invalid log level "verbose" \(allowed: debug, info, warn, error\)/,
  )
  assert.throws(() => logging('cluster:loud'), /invalid log level "loud"/)
  assert.throws(() => logging('cluster:'), /invalid log level ""/)
  assert.throws(
    () => logging('a:b:debug'),
    /not in expected format "identifier:loglevel" or "loglevel"/,
  )
})

Deno.test('nullLogger discards everything', () => {
  nullLogger.debug('x')
  nullLogger.info('x')
  nullLogger.warn('x')
  nullLogger.error('x')
})
