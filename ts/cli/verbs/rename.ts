/**
 * `devmapper rename`: gives a device a new name, or (`--setuuid`) the uuid it has none of yet.
 * @packageDocumentation
 */
import { newDeviceName, oneDevice, SELECT_OPTIONS } from '../args';
import { ExitCode, defineVerb } from '../verb';

/** `devmapper rename`. */
export const rename = defineVerb({
  name: 'rename',
  summary: 'Rename a device, or set its uuid (--setuuid)',
  usage: 'NAME NEW_NAME | NAME --setuuid UUID',
  description: `The kernel renames by name, so a device given by number or uuid is looked up first, and
the rename checked to be of that device. A uuid can be set only on a device that has none.
/dev/mapper follows (udev, or the library's own node). JSON: the device's DeviceInfo after.`,
  options: {
    ...SELECT_OPTIONS,
    setuuid: { type: 'boolean', help: 'the second operand is a uuid to give the device' },
  },
  positionals: { min: 1, max: 2 },
  async run(ctx) {
    const { id, rest } = oneDevice(ctx, ctx.options, { min: 1, max: 1 });
    const target = rest[0] ?? '';
    const dm = ctx.syncClient();
    const info = ctx.options.setuuid === true ? dm.setUuid(id, target) : dm.rename(id, newDeviceName(target, ctx.verb.name));
    if (ctx.global.json) ctx.out.json(info);
    return ExitCode.ok;
  },
});
