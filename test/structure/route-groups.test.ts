import { describe, expect, it } from "vitest";
import { type Group, fullApp, groupOf, groupRouters } from "../../src/app";

/**
 * The API is served by route groups, each built by the first request for it (src/app.ts, SPEC §6: cold start).
 * Every route must be reachable: its path, with any value in its parameters, belongs to the group that holds it.
 */

/** A route's path with each parameter filled in with a value, as a request would carry it. */
const concrete = (path: string, value: string) => path.replace(/:[A-Za-z]+/g, encodeURIComponent(value));

describe("route groups", () => {
	it("serve every route of the API from the group its path belongs to", async () => {
		const routes = (await fullApp()).routes.filter((route) => route.method !== "ALL" && route.path.startsWith("/api/v2/"));
		expect(routes.length).toBeGreaterThan(40);
		const misplaced: string[] = [];
		for (const route of routes) {
			for (const value of ["x", "tags", "token", "learner 1", "a/b"]) {
				const group = groupOf(concrete(route.path, value));
				if (group === "docs" || group === "console" || group === "front") {
					if (!/^\/api\/v2\/(openapi\.json|docs)/.test(route.path)) misplaced.push(`${route.method} ${route.path} (${value}): ${group}`);
					continue;
				}
				const served = (await groupRouters(group as Exclude<Group, "docs" | "console" | "front">)).some((router) =>
					router.routes.some((own) => own.method === route.method && `/api/v2${own.path}` === route.path),
				);
				if (!served) misplaced.push(`${route.method} ${route.path} (${value}): group ${group}`);
			}
		}
		expect(misplaced).toEqual([]);
	});

	it("serve the privacy routes from their paths' groups: an application's export with the learners, documents with the jobs, the rest with the realm's views", () => {
		expect(
			[
				"/api/v2/learner/L1/export",
				"/api/v2/learner/tags/export",
				"/api/v2/jobs/J1/export",
				"/api/v2/appManagement/learners/L1/export",
				"/api/v2/appManagement/applications/A1/retention",
				"/api/v2/appManagement/audit",
				"/api/v2/appManagement/audit/head",
				"/api/v2//learner/L1/export",
			].map(groupOf),
		).toEqual(["learners", "learners", "jobs", "realm", "realm", "realm", "realm", "learners"]);
	});

	it("send the console, the front door and unknown paths to no API group", () => {
		expect([groupOf("/console"), groupOf("/console/jobs/x"), groupOf("/"), groupOf("/api/v2/nothing"), groupOf("/api/v3/ping"), groupOf("/index.html")]).toEqual([
			"console",
			"console",
			"front",
			"none",
			"none",
			"none",
		]);
	});

	it("serve managing applications apart from the realm's views, webhooks among them", () => {
		expect(
			[
				"/api/v2/appManagement/applications",
				"/api/v2/appManagement/applications/A1",
				"/api/v2/appManagement/A1/credentials",
				"/api/v2/appManagement/learners/L1/delete-information",
				"/api/v2/appManagement/A1/webhook",
				"/api/v2/appManagement/A1/webhook/test",
				"/api/v2/appManagement/learners/L1/applications",
			].map(groupOf),
		).toEqual(["management", "management", "management", "management", "realm", "realm", "realm"]);
	});

	it("route the realm's job list to the job routes, beside GET /jobs, and usage to the realm's views", () => {
		expect([groupOf("/api/v2/appManagement/jobs"), groupOf("/api/v2/jobs"), groupOf("/api/v2/appManagement/usage")]).toEqual(["jobs", "jobs", "realm"]);
		expect(groupOf("/api/v2/appManagement/applications/x/usage")).toBe("realm");
	});

	it("count repeated slashes as one for the new paths too: the front door, the job lists, usage", () => {
		expect([groupOf("//"), groupOf("/api/v2//jobs"), groupOf("//api/v2//appManagement/jobs"), groupOf("/api/v2//appManagement/usage")]).toEqual([
			"front",
			"jobs",
			"jobs",
			"realm",
		]);
	});
});
