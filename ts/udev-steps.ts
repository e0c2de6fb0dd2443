/**
 * How a driver carries out the udev steps of a program (cookies and `/dev/mapper` nodes): the
 * same for both drivers but the cookie's wait, which the asynchronous one awaits off the event
 * loop and the synchronous one blocks on.
 * @internal
 */
import { applyNodeOp } from './nodes';
import type { Answer, CookieStep, CookieWaitStep, NodeStep, Step } from './steps';
import { createCookie, waitCookie, waitCookieSync } from './udev';

/** The steps of udev cooperation. */
export type UdevStep = CookieStep | CookieWaitStep | NodeStep;

/** True for a cookie or node step. */
export function isUdevStep(step: Step): step is UdevStep {
  return step.kind === 'cookie' || step.kind === 'cookieWait' || step.kind === 'node';
}

function immediate(step: CookieStep | NodeStep): Answer {
  if (step.kind === 'cookie') return { cookie: createCookie(step.flags) };
  return applyNodeOp(step.op);
}

/** Runs a udev step for the asynchronous driver: the cookie's wait on a thread of the addon's own. */
export async function runUdevStep(step: UdevStep): Promise<Answer> {
  if (step.kind !== 'cookieWait') return immediate(step);
  await waitCookie(step.wait);
  return {};
}

/** Runs a udev step on the calling thread (the synchronous driver). */
export function runUdevStepSync(step: UdevStep): Answer {
  if (step.kind !== 'cookieWait') return immediate(step);
  waitCookieSync(step.wait);
  return {};
}
