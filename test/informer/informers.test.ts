import assert from 'node:assert/strict'
import {
  diskSection,
  numpinSection,
  pinqueueSection,
  tagsSection,
} from '../../src/informer/config.ts'
import { diskInformer } from '../../src/informer/disk.ts'
import { numpinInformer } from '../../src/informer/numpin.ts'
import { pinqueueInformer } from '../../src/informer/pinqueue.ts'
import { tagsInformer } from '../../src/informer/tags.ts'
import { fakeIpfs } from '../support/fake_ipfs.ts'
import { testCid } from '../pintracker/helpers.ts'

const NOW = 1_700_000_000_000
const now = () => NOW
const NS = 1_000_000

Deno.test('freespace = StorageMax - RepoSize, as value and weight, with the section TTL', async () => {
  const ipfs = fakeIpfs({ repoStat: { repoSize: 1_000, storageMax: 10_000 } })
  const inf = diskInformer(diskSection.defaults(), { ipfs, peerId: 'p1', now })
  assert.equal(inf.name(), 'freespace')
  const [m] = await inf.getMetrics()
  assert.deepEqual(m, {
    name: 'freespace',
    peer: 'p1',
    value: '9000',
    expire: (NOW + 30_000) * NS,
    valid: true,
    weight: 9000,
    partitionable: false,
    received_at: NOW * NS,
  })
})

Deno.test('freespace of a full repository is an invalid metric', async () => {
  const ipfs = fakeIpfs({ repoStat: { repoSize: 10_000, storageMax: 10_000 } })
  const [m] = await diskInformer(diskSection.defaults(), { ipfs, now }).getMetrics()
  assert.equal(m.valid, false)
  assert.equal(m.weight, 0)
  assert.equal(m.value, '0')
})

Deno.test('reposize: value is the size, weight its negation; IPFS failure is invalid', async () => {
  const ipfs = fakeIpfs({ repoStat: { repoSize: 1_234, storageMax: 10_000 } })
  const cfg = { ...diskSection.defaults(), metric_type: 'reposize', metric_ttl: 5_000 }
  const inf = diskInformer(cfg, { ipfs, now })
  assert.equal(inf.name(), 'reposize')
  let [m] = await inf.getMetrics()
  assert.equal(m.value, '1234')
  assert.equal(m.weight, -1234)
  assert.equal(m.expire, (NOW + 5_000) * NS)
  ipfs.failAll.repoStat = 'down'
  ;[m] = await inf.getMetrics()
  assert.equal(m.valid, false)
  assert.equal(m.value, '')
  await inf.stop()
  delete ipfs.failAll.repoStat
  ;[m] = await inf.getMetrics()
  assert.equal(m.valid, false, 'a stopped informer reports nothing valid')
})

Deno.test('numpin counts recursive and direct pins from a streamed listing', async () => {
  const ipfs = fakeIpfs()
  for (let i = 0; i < 5; i++) ipfs.addPin(await testCid(i))
  ipfs.addPin(await testCid(5), 'direct')
  const inf = numpinInformer(numpinSection.defaults(), { ipfs, now })
  assert.equal(inf.name(), 'numpin')
  let [m] = await inf.getMetrics()
  assert.equal(m.value, '6')
  assert.equal(m.valid, true)
  assert.equal(m.weight, 0)
  assert.equal(m.expire, (NOW + 10_000) * NS)
  ipfs.failAll.pinLs = 'down'
  ;[m] = await inf.getMetrics()
  assert.equal(m.valid, false)
})

Deno.test('tags: one partitionable metric per tag; none configured is tag:none, invalid', async () => {
  const cfg = { ...tagsSection.defaults(), tags: { group: 'default', region: 'eu' } }
  const ms = await tagsInformer(cfg, { peerId: 'p1', now }).getMetrics()
  assert.deepEqual(
    ms.map((m) => [m.name, m.value, m.valid, m.partitionable, m.weight]),
    [['tag:group', 'default', true, true, 0], ['tag:region', 'eu', true, true, 0]],
  )
  assert.equal(ms[0].expire, (NOW + 30_000) * NS)
  const [none] = await tagsInformer({ ...cfg, tags: {} }, { now }).getMetrics()
  assert.equal(none.name, 'tag:none')
  assert.equal(none.valid, false)
  assert.equal(none.partitionable, true)
})

Deno.test('pinqueue: value is the queue length, weight -queued/weight_bucket_size', async () => {
  let queued = 0
  const tracker = { pinQueueSize: () => queued }
  const cfg = { ...pinqueueSection.defaults(), weight_bucket_size: 100 }
  const inf = pinqueueInformer(cfg, { tracker, now })
  assert.equal(inf.name(), 'pinqueue')
  let [m] = await inf.getMetrics()
  assert.equal(m.value, '0')
  assert.ok(Object.is(m.weight, 0))
  queued = 250
  ;[m] = await inf.getMetrics()
  assert.equal(m.value, '250')
  assert.equal(m.weight, -2)
  queued = 99
  ;[m] = await inf.getMetrics()
  assert.ok(Object.is(m.weight, 0), 'less than one bucket weighs 0, not -0')
})
