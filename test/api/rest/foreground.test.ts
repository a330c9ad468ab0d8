import assert from 'node:assert/strict'
import { restApi } from '../../../src/api/rest/server.ts'
import { defaultPinOptions } from '../../../src/types/pin.ts'
import { Foreground } from '../../../src/util/foreground.ts'
import { FAKE_PEER_ID, fakeCluster } from '../../support/fake_cluster.ts'
import { call, restConfig } from './helpers.ts'

Deno.test('every API request is foreground until its response body is sent', async () => {
  let t = 0
  const fg = new Foreground(() => t, 100)
  const cluster = fakeCluster()
  await cluster.pin(
    'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy',
    defaultPinOptions(),
  )
  const api = restApi(restConfig(), {
    cluster,
    configDir: Deno.cwd(),
    peerId: FAKE_PEER_ID,
    foreground: fg,
  })
  const res = await call(api, 'GET', '/allocations')
  t += 1000
  assert.equal(fg.busy(), true, 'the listing is still to be read')
  await res.text()
  assert.equal(fg.busy(), true, 'grace period')
  t += 100
  assert.equal(fg.busy(), false)

  const gone = await call(api, 'GET', '/allocations')
  await gone.body?.cancel() // the client went away
  t += 100
  assert.equal(fg.busy(), false)

  await (await call(api, 'GET', '/id')).text()
  assert.equal(fg.busy(), true)
})
