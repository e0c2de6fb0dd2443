/**
 * `devmapper version`: the package's version and the kernel's device-mapper interface version.
 * @packageDocumentation
 */
import { packageVersion } from '../version';
import { ExitCode, defineVerb } from '../verb';

/** `devmapper version`. */
export const version = defineVerb({
  name: 'version',
  summary: "Print the library's version and the kernel's device-mapper interface version",
  usage: '',
  description: 'Text: "Library version: V" and "Driver version: 4.N.P" (as dmsetup version prints them).\nJSON: { "library": "V", "driver": [4, N, P] }.',
  options: {},
  positionals: { min: 0, max: 0 },
  async run(ctx) {
    const driver = ctx.syncClient().driverVersion;
    if (ctx.global.json) ctx.out.json({ library: packageVersion(), driver });
    else {
      ctx.out.line(`Library version:   ${packageVersion()}`);
      ctx.out.line(`Driver version:    ${driver.join('.')}`);
    }
    return ExitCode.ok;
  },
});
