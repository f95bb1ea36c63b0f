import { beforeAll, describe, expect, it } from "vitest";
import {
	AUTH_MODES,
	ScormCloud,
	expectFailure,
	invoke,
	mintToken,
	oauthClient,
	openSession,
	provisionApp,
	register,
	tagList,
	unique,
	type Session,
} from "./helpers";

const progress = async (session: Session, registrationId: string) => {
	const { data, response } = await invoke<ScormCloud.RegistrationSchema>((done) =>
		session.registrations.getRegistrationProgress(registrationId, {}, done),
	);
	expect(response.status).toBe(200);
	return data;
};

const list = async (session: Session, opts: ScormCloud.GetRegistrationsOptions) => {
	const { data, response } = await invoke<ScormCloud.RegistrationListSchema>((done) =>
		session.registrations.getRegistrations(opts, done),
	);
	expect(response.status).toBe(200);
	expect(data).toBeInstanceOf(ScormCloud.RegistrationListSchema);
	return data;
};

const registrationTags = async (session: Session, registrationId: string) => {
	const { data } = await invoke<ScormCloud.TagListSchema>((done) =>
		session.registrations.getRegistrationTags(registrationId, done),
	);
	expect(data).toBeInstanceOf(ScormCloud.TagListSchema);
	return data.tags;
};

describe.each(AUTH_MODES)("RegistrationApi with %s auth", (mode) => {
	let session: Session;

	beforeAll(async () => {
		session = await openSession(mode, await provisionApp());
	});

	describe("createRegistration / getRegistrationProgress", () => {
		it("creates a registration the client reads back as a RegistrationSchema", async () => {
			const before = Date.now();
			const { learnerId, registrationId, courseId } = await register(session, {
				email: "ada@example.com",
				firstName: "Ada",
				lastName: "Lovelace",
				registrationTags: ["r1", "r2"],
			});
			const registration = await progress(session, registrationId);
			expect(registration).toBeInstanceOf(ScormCloud.RegistrationSchema);
			expect(registration).toMatchObject({
				id: registrationId,
				instance: expect.any(Number),
				xapiRegistrationId: expect.any(String),
				registrationCompletion: "UNKNOWN",
				registrationSuccess: "UNKNOWN",
				totalSecondsTracked: 0,
				course: { id: courseId },
				learner: { id: learnerId, email: "ada@example.com", firstName: "Ada", lastName: "Lovelace" },
				tags: ["r1", "r2"],
			});
			// The client turns createdDate and updated into Dates: they must be ISO-8601 it can parse.
			for (const date of [registration.createdDate, registration.updated]) {
				expect(date).toBeInstanceOf(Date);
				expect(Math.abs((date?.getTime() ?? Number.NaN) - before)).toBeLessThan(60_000);
			}
		});

		it("round-trips registration ids with characters the client percent-encodes", async () => {
			const registrationId = `${unique("reg")}/a b?#%ü`;
			await register(session, { registrationId });
			expect((await progress(session, registrationId)).id).toBe(registrationId);
			const { response } = await invoke<null>((done) => session.registrations.getRegistration(registrationId, done));
			expect(response.status).toBe(200);
		});

		it("reports 400 for a duplicate registration id", async () => {
			const { registrationId } = await register(session);
			const again = new ScormCloud.CreateRegistrationSchema(
				unique("course"),
				new ScormCloud.LearnerSchema(unique("learner")),
				registrationId,
			);
			expect(await expectFailure((done) => session.registrations.createRegistration(again, {}, done), 400)).toBe(
				`Registration with id [${registrationId}] already exists`,
			);
		});

		it("reports 400 naming the field for an id over 255 characters", async () => {
			const registration = new ScormCloud.CreateRegistrationSchema(
				"c".repeat(256),
				new ScormCloud.LearnerSchema(unique("learner")),
				unique("reg"),
			);
			expect(
				await expectFailure((done) => session.registrations.createRegistration(registration, {}, done), 400),
			).toMatch(/courseId/);
		});

		it("reports 400 for a learner tag with a comma", async () => {
			const registration = new ScormCloud.CreateRegistrationSchema(
				unique("course"),
				new ScormCloud.LearnerSchema(unique("learner")),
				unique("reg"),
			);
			registration.learnerTags = ["a,b"];
			expect(
				await expectFailure((done) => session.registrations.createRegistration(registration, {}, done), 400),
			).toMatch(/comma/);
		});

		it("reports 404 naming an unknown registration", async () => {
			const registrationId = unique("nothing");
			expect(
				await expectFailure((done) => session.registrations.getRegistrationProgress(registrationId, {}, done), 404),
			).toContain(registrationId);
		});
	});

	describe("getRegistration (HEAD: registration exists)", () => {
		it("answers 200 for an existing registration and 404 for an unknown one", async () => {
			const { registrationId } = await register(session);
			const { response } = await invoke<null>((done) => session.registrations.getRegistration(registrationId, done));
			expect(response.status).toBe(200);
			await expectFailure((done) => session.registrations.getRegistration(unique("nothing"), done), 404, {
				bodyless: true,
			});
		});
	});

	describe("deleteRegistration", () => {
		it("deletes the registration; deleting a learner's last registration removes the learner", async () => {
			const learnerId = unique("learner");
			const first = await register(session, { learnerId, learnerTags: ["t"] });
			const second = await register(session, { learnerId });

			const { response } = await invoke<null>((done) => session.registrations.deleteRegistration(first.registrationId, done));
			expect(response.status).toBe(204);
			await expectFailure((done) => session.registrations.getRegistration(first.registrationId, done), 404, {
				bodyless: true,
			});
			const { data: tags } = await invoke<ScormCloud.TagListSchema>((done) =>
				session.learners.getLearnerTags(learnerId, done),
			);
			expect(tags.tags).toEqual(["t"]);

			await invoke<null>((done) => session.registrations.deleteRegistration(second.registrationId, done));
			await expectFailure((done) => session.learners.getLearnerTags(learnerId, done), 404);
		});

		it("reports 404 for an unknown registration", async () => {
			await expectFailure((done) => session.registrations.deleteRegistration(unique("nothing"), done), 404);
		});
	});

	describe("getRegistrations", () => {
		it("filters by learnerId and by courseId", async () => {
			const learnerId = unique("learner");
			const courseId = unique("course");
			const a = await register(session, { learnerId, courseId });
			const b = await register(session, { learnerId });
			const c = await register(session, { courseId });

			const byLearner = await list(session, { learnerId });
			expect(byLearner.registrations.map(({ id }) => id).sort()).toEqual([a.registrationId, b.registrationId].sort());
			expect(byLearner.more).toBeUndefined();
			for (const registration of byLearner.registrations) {
				expect(registration).toBeInstanceOf(ScormCloud.RegistrationSchema);
				expect(registration.learner?.id).toBe(learnerId);
			}

			const byCourse = await list(session, { courseId });
			expect(byCourse.registrations.map(({ id }) => id).sort()).toEqual([a.registrationId, c.registrationId].sort());
		});

		it("filters by tags, matching any of them (the client sends them comma-separated)", async () => {
			const courseId = unique("course");
			const red = await register(session, { courseId, registrationTags: ["red"] });
			const blue = await register(session, { courseId, registrationTags: ["blue", "other"] });
			await register(session, { courseId, registrationTags: ["green"] });

			const found = await list(session, { courseId, tags: ["red", "blue"] });
			expect(found.registrations.map(({ id }) => id).sort()).toEqual([red.registrationId, blue.registrationId].sort());
		});

		it("filters by since and until (the client sends Dates as ISO-8601)", async () => {
			const courseId = unique("course");
			const { registrationId } = await register(session, { courseId });
			const created = (await progress(session, registrationId)).createdDate ?? new Date(Number.NaN);
			const second = 1000;

			const within = await list(session, {
				courseId,
				since: new Date(created.getTime() - second),
				until: new Date(created.getTime() + second),
			});
			expect(within.registrations.map(({ id }) => id)).toEqual([registrationId]);
			expect((await list(session, { courseId, since: new Date(created.getTime() + second) })).registrations).toEqual([]);
			expect((await list(session, { courseId, until: new Date(created.getTime() - second) })).registrations).toEqual([]);
		});

		it("answers an empty list for an unknown learner", async () => {
			const found = await list(session, { learnerId: unique("nobody") });
			expect(found.registrations).toEqual([]);
			expect(found.more).toBeUndefined();
		});

		it("pages by at most 100, and `more` alone carries the original filters", async () => {
			const courseId = unique("course");
			const created: string[] = [];
			// Ten at a time: enough to be quick, few enough to stay polite to the local server.
			for (let start = 0; start < 105; start += 10) {
				const batch = await Promise.all(
					Array.from({ length: Math.min(10, 105 - start) }, () => register(session, { courseId })),
				);
				created.push(...batch.map(({ registrationId }) => registrationId));
			}
			await register(session); // another course, which no page may include

			const first = await list(session, { courseId });
			expect(first.registrations.length).toBeLessThanOrEqual(100);
			expect(first.more).toEqual(expect.any(String));
			const seen = first.registrations.map(({ id }) => id);
			let more = first.more;
			while (more) {
				const page = await list(session, { more });
				expect(page.registrations.length).toBeLessThanOrEqual(100);
				seen.push(...page.registrations.map(({ id }) => id));
				more = page.more;
			}
			expect(seen.length).toBe(created.length);
			expect([...seen].sort()).toEqual([...created].sort());
		});
	});

	describe("registration tags", () => {
		it("getRegistrationTags / putRegistrationTags / deleteRegistrationTags behave like the learner's", async () => {
			const { registrationId } = await register(session, { registrationTags: ["a"] });
			expect(await registrationTags(session, registrationId)).toEqual(["a"]);

			const { response: put } = await invoke<null>((done) =>
				session.registrations.putRegistrationTags(registrationId, tagList(["b", "a", "c"]), done),
			);
			expect(put.status).toBe(204);
			expect(await registrationTags(session, registrationId)).toEqual(["a", "b", "c"]);

			const { response: deleted } = await invoke<null>((done) =>
				session.registrations.deleteRegistrationTags(registrationId, tagList(["b", "never-applied"]), done),
			);
			expect(deleted.status).toBe(204);
			expect(await registrationTags(session, registrationId)).toEqual(["a", "c"]);
		});

		it("putRegistrationTagsBatch adds every tag to every registration, all or nothing", async () => {
			const first = await register(session);
			const second = await register(session, { registrationTags: ["old"] });
			const batch = new ScormCloud.BatchTagsSchema([first.registrationId, second.registrationId], ["x"]);
			const { response } = await invoke<null>((done) => session.registrations.putRegistrationTagsBatch(batch, done));
			expect(response.status).toBe(204);
			expect(await registrationTags(session, first.registrationId)).toEqual(["x"]);
			expect(await registrationTags(session, second.registrationId)).toEqual(["old", "x"]);

			const missing = unique("missing");
			const failing = new ScormCloud.BatchTagsSchema([first.registrationId, missing], ["y"]);
			expect(await expectFailure((done) => session.registrations.putRegistrationTagsBatch(failing, done), 404)).toContain(
				missing,
			);
			expect(await registrationTags(session, first.registrationId)).toEqual(["x"]);
		});

		it("reports 400 for a tag with a comma and 404 for an unknown registration", async () => {
			const { registrationId } = await register(session);
			expect(
				await expectFailure(
					(done) => session.registrations.putRegistrationTags(registrationId, tagList(["a,b"]), done),
					400,
				),
			).toMatch(/comma/);
			const unknown = unique("nothing");
			await expectFailure((done) => session.registrations.getRegistrationTags(unknown, done), 404);
			await expectFailure((done) => session.registrations.putRegistrationTags(unknown, tagList(["a"]), done), 404);
			await expectFailure((done) => session.registrations.deleteRegistrationTags(unknown, tagList(["a"]), done), 404);
		});
	});
});

describe("OAuth scopes on RegistrationApi", () => {
	it("reports 403 naming the scope a token lacks", async () => {
		const app = await provisionApp();
		const { registrationId } = await register(await openSession("Basic", app));
		const readOnly = new ScormCloud.RegistrationApi(
			oauthClient((await mintToken(app, "read:registration")).accessToken ?? ""),
		);
		expect((await invoke((done) => readOnly.getRegistrationProgress(registrationId, {}, done))).response.status).toBe(200);
		const registration = new ScormCloud.CreateRegistrationSchema(
			unique("course"),
			new ScormCloud.LearnerSchema(unique("learner")),
			unique("reg"),
		);
		expect(await expectFailure((done) => readOnly.createRegistration(registration, {}, done), 403)).toContain(
			"write:registration",
		);
		expect(await expectFailure((done) => readOnly.deleteRegistration(registrationId, done), 403)).toContain(
			"delete:registration",
		);
	});
});
