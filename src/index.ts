// The Worker's entry. Each handler loads its own modules on its first invocation in an isolate, so startup
// evaluates almost nothing (SPEC §6: cold start): a queue or cron invocation never builds an HTTP app, and a request
// builds only its own route group's (src/app.ts).
let http: Promise<typeof import("./app")> | undefined;

export default {
	fetch: async (request: Request, env: Env, ctx: ExecutionContext) => (await (http ??= import("./app"))).handle(request, env, ctx),
	queue: async (batch, env, ctx) => (await import("./jobs/consumer")).handleQueue(batch, env, ctx),
	// The Cron Trigger (wrangler.toml [triggers]): send again the messages of jobs nobody attends to.
	scheduled: async (controller, env) => {
		await (await import("./jobs/sweeper")).sweep(env, controller.scheduledTime);
	},
} satisfies ExportedHandler<Env>;
