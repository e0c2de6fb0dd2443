// Every target's kernel tests again, with the synchronous client behind the same interface:
// the synchronous API has the kernel coverage of the asynchronous one (same tables read
// back, same statuses, same messages, same data through the devices).
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { withSyncClient } from './helpers';

const dir = join(__dirname, 'targets');
const files = readdirSync(dir).filter((f) => f.endsWith('.test.js')).sort();

describe('with the synchronous client (DeviceMapper.openSync)', function () {
  withSyncClient(() => {
    for (const f of files) {
      const file = join(dir, f);
      // A test file registers its tests when it is loaded: loading it here, inside withSyncClient, is the point.
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- a file found at run time
      require(file);
      // Loaded once more by mocha itself for the asynchronous run: this registration is done.
      // eslint-disable-next-line @typescript-eslint/no-dynamic-delete -- require.cache is keyed by path
      delete require.cache[require.resolve(file)];
    }
  });
});
