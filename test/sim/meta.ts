// The task meta the simulation hands its reporter.
declare module "vitest" {
	interface TaskMeta {
		/** The simulation's summary line, printed by test/sim/reporter.ts. */
		sim?: string;
	}
}

export {};
