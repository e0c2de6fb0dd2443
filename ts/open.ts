/**
 * Opening the control node, shared by the asynchronous and the synchronous client.
 * @internal
 */
import type { Control } from '../binding';
import { binding } from './binding';
import type { OpenOptions } from './client';
import { CallSite, DmError, toDmError } from './errors';
import { checkUdevMode, DEFAULT_UDEV_TIMEOUT, type UdevSettings } from './udev';
import { checkInteger, checkOptions, expected } from './validate';

/** The control node `open` uses by default. */
export const DEFAULT_CONTROL = '/dev/mapper/control';

/** Why `DeviceMapper.open` failed, in words a user can act on. */
export function openFailure(e: unknown, path: string, site: CallSite): Error {
  const error = toDmError(e, site, path);
  if (!(error instanceof DmError)) return error;
  let hint: string | undefined;
  if (error.code === 'ENOENT' || error.code === 'ENODEV' || error.code === 'ENXIO') {
    hint =
      `${path} does not exist: this kernel has no device-mapper loaded (load it with \`modprobe dm-mod\`, as root), ` +
      'or this is a container without the host\'s /dev/mapper. To try devmapper without it, run your script in the ' +
      'kernel sandbox: `npx devmapper-sandbox -- node script.js` (devmapper/sandbox, Debian package user-mode-linux)';
  } else if (error.code === 'EACCES' || error.code === 'EPERM') {
    hint = `${path} needs root (device-mapper ioctls need CAP_SYS_ADMIN); run as root, or try it in the kernel sandbox (npx devmapper-sandbox)`;
  }
  if (hint === undefined) return error;
  const better = new DmError({ errno: error.errno, syscall: error.syscall, device: path, message: `open ${path}: ${error.message.replace(/^open \S+: /, '')} — ${hint}`, cause: e });
  return site.attach(better);
}


/** Checks `open`'s options and opens the control node; the kernel is asked nothing yet. */
export function openControl(
  options: OpenOptions | undefined,
  site: CallSite,
): { control: Control; path: string; udev: UdevSettings; stackTraces: 'call' | 'async' } {
  let udev: UdevSettings;
  let path: unknown;
  let stackTraces: unknown;
  try {
    const opts = checkOptions(options, 'options', ['path', 'udev', 'udevTimeout', 'stackTraces']);
    path = opts.path ?? DEFAULT_CONTROL;
    stackTraces = opts.stackTraces ?? 'async';
    udev = {
      mode: checkUdevMode(opts.udev, 'options.udev') ?? 'auto',
      timeout: opts.udevTimeout === undefined ? DEFAULT_UDEV_TIMEOUT : checkInteger(opts.udevTimeout, 'options.udevTimeout', 1, 86_400_000),
    };
  } catch (e) {
    throw e instanceof Error ? site.attach(e) : e;
  }
  if (typeof path !== 'string' || path === '') throw site.attach(expected('a path', 'options.path', path));
  if (stackTraces !== 'call' && stackTraces !== 'async') throw site.attach(expected("'call' or 'async'", 'options.stackTraces', stackTraces));
  try {
    return { control: new (binding().Control)(path), path, udev, stackTraces };
  } catch (e) {
    throw openFailure(e, path, site);
  }
}
