import { beforeAll, describe, expect, it } from "vitest";
import {
	AUTH_MODES,
	ScormCloud,
	basicClient,
	expectFailure,
	invoke,
	jobLocation,
	mintToken,
	oauthClient,
	openSession,
	provisionApp,
	putRealmUser,
	register,
	tagList,
	unique,
	waitForJob,
	type Session,
} from "./helpers";

const tagsOf = async (session: Session, learnerId: string) => {
	const { data, response } = await invoke<ScormCloud.TagListSchema>((done) => session.learners.getLearnerTags(learnerId, done));
	expect(response.status).toBe(200);
	expect(data).toBeInstanceOf(ScormCloud.TagListSchema);
	return data.tags;
};

const learnerOn = async (session: Session, registrationId: string) => {
	const { data } = await invoke<ScormCloud.RegistrationSchema>((done) =>
		session.registrations.getRegistrationProgress(registrationId, {}, done),
	);
	return data.learner;
};

describe.each(AUTH_MODES)("LearnerApi with %s auth", (mode) => {
	let session: Session;
	let adminEmail: string;
	let memberEmail: string;

	beforeAll(async () => {
		session = await openSession(mode, await provisionApp());
		adminEmail = `${unique("admin")}@example.com`;
		memberEmail = `${unique("member")}@example.com`;
		await putRealmUser(adminEmail, "admin");
		await putRealmUser(memberEmail, "member");
	});

	describe("getLearnerTags / putLearnerTags / deleteLearnerTags", () => {
		it("adds tags as a set union and reads them back in the order first applied", async () => {
			const { learnerId } = await register(session, { learnerTags: ["blue", "green"] });
			const { response } = await invoke<null>((done) =>
				session.learners.putLearnerTags(learnerId, tagList(["red", "blue", "red"]), done),
			);
			expect(response.status).toBe(204);
			expect(await tagsOf(session, learnerId)).toEqual(["blue", "green", "red"]);
		});

		it("removes the given tags and ignores tags the learner does not have", async () => {
			const { learnerId } = await register(session, { learnerTags: ["a", "b", "c"] });
			const { response } = await invoke<null>((done) =>
				session.learners.deleteLearnerTags(learnerId, tagList(["b", "never-applied"]), done),
			);
			expect(response.status).toBe(204);
			expect(await tagsOf(session, learnerId)).toEqual(["a", "c"]);
		});

		it("treats learner ids and tags as exact, case-sensitive strings", async () => {
			const { learnerId } = await register(session, { learnerId: unique("Learner"), learnerTags: ["Tag"] });
			await invoke<null>((done) => session.learners.putLearnerTags(learnerId, tagList(["tag"]), done));
			expect(await tagsOf(session, learnerId)).toEqual(["Tag", "tag"]);
			await expectFailure((done) => session.learners.getLearnerTags(learnerId.toLowerCase(), done), 404);
		});

		it("round-trips learner ids with characters the client percent-encodes (email, space, slash, non-ASCII)", async () => {
			const learnerId = `${unique("ada")}+lovelace@example.com/x y?#%ü`;
			await register(session, { learnerId, learnerTags: ["t"] });
			await invoke<null>((done) => session.learners.putLearnerTags(learnerId, tagList(["ü ñ"]), done));
			expect(await tagsOf(session, learnerId)).toEqual(["t", "ü ñ"]);
		});

		it("reports 404 naming an unknown learner, for each of the three calls", async () => {
			const learnerId = unique("nobody");
			expect(await expectFailure((done) => session.learners.getLearnerTags(learnerId, done), 404)).toContain(learnerId);
			await expectFailure((done) => session.learners.putLearnerTags(learnerId, tagList(["x"]), done), 404);
			await expectFailure((done) => session.learners.deleteLearnerTags(learnerId, tagList(["x"]), done), 404);
		});

		it("reports 400 for a tag with a comma, and changes nothing", async () => {
			const { learnerId } = await register(session, { learnerTags: ["kept"] });
			const message = await expectFailure(
				(done) => session.learners.putLearnerTags(learnerId, tagList(["fine", "a,b"]), done),
				400,
			);
			expect(message).toMatch(/comma/);
			expect(await tagsOf(session, learnerId)).toEqual(["kept"]);
		});

		it("reports 400 for more than 100 tags in one request", async () => {
			const { learnerId } = await register(session);
			const tags = Array.from({ length: 101 }, (_, index) => `t${index}`);
			expect(await expectFailure((done) => session.learners.putLearnerTags(learnerId, tagList(tags), done), 400)).toMatch(
				/100/,
			);
		});

		it("answers 404 for another application's learner", async () => {
			const { learnerId } = await register(session, { learnerTags: ["mine"] });
			const other = await provisionApp();
			const stranger = new ScormCloud.LearnerApi(basicClient(other.appId, other.secret));
			await expectFailure((done) => stranger.getLearnerTags(learnerId, done), 404);
		});
	});

	describe("putLearnerTagsBatch", () => {
		it("adds every tag to every learner", async () => {
			const first = await register(session, { learnerTags: ["old"] });
			const second = await register(session);
			const batch = new ScormCloud.BatchTagsSchema([first.learnerId, second.learnerId], ["x", "y"]);
			const { response } = await invoke<null>((done) => session.learners.putLearnerTagsBatch(batch, done));
			expect(response.status).toBe(204);
			expect(await tagsOf(session, first.learnerId)).toEqual(["old", "x", "y"]);
			expect(await tagsOf(session, second.learnerId)).toEqual(["x", "y"]);
		});

		it("is all or nothing: 404 listing the unknown ids, and no learner changes", async () => {
			const known = await register(session, { learnerTags: ["before"] });
			const missing = unique("missing");
			const batch = new ScormCloud.BatchTagsSchema([known.learnerId, missing], ["after"]);
			const message = await expectFailure((done) => session.learners.putLearnerTagsBatch(batch, done), 404);
			expect(message).toContain(missing);
			expect(message).not.toContain(known.learnerId);
			expect(await tagsOf(session, known.learnerId)).toEqual(["before"]);
		});

		it("reports 400 for a tag with a comma", async () => {
			const { learnerId } = await register(session);
			const batch = new ScormCloud.BatchTagsSchema([learnerId], ["a,b"]);
			expect(await expectFailure((done) => session.learners.putLearnerTagsBatch(batch, done), 400)).toMatch(/comma/);
		});
	});

	describe("updateLearnerInfo", () => {
		it("answers 204 with a job Location, and the job updates every registration of the learner", async () => {
			const learnerId = unique("learner");
			const first = await register(session, { learnerId, email: "old@example.com", firstName: "Old", lastName: "Name" });
			const second = await register(session, { learnerId, email: "old@example.com", firstName: "Old", lastName: "Name" });
			const info = new ScormCloud.LearnerSchema(learnerId);
			info.email = "new@example.com";
			info.firstName = "New";
			info.lastName = "Person";
			const { response } = await invoke<null>((done) => session.learners.updateLearnerInfo(learnerId, info, done));
			expect(response.status).toBe(204);
			const job = await waitForJob(session, jobLocation(response));
			expect(job).toMatchObject({ type: "updateLearnerInfo", status: "completed", registrationsAffected: 2 });
			expect(job.completedDate).toEqual(expect.any(String));

			for (const { registrationId } of [first, second]) {
				const learner = await learnerOn(session, registrationId);
				expect(learner).toBeInstanceOf(ScormCloud.LearnerSchema);
				expect(learner).toEqual({ id: learnerId, email: "new@example.com", firstName: "New", lastName: "Person" });
			}
		});

		it("leaves absent fields as they are", async () => {
			const { learnerId, registrationId } = await register(session, {
				email: "keep@example.com",
				firstName: "Old",
				lastName: "Keep",
			});
			const info = new ScormCloud.LearnerSchema(learnerId);
			info.firstName = "Changed";
			const { response } = await invoke<null>((done) => session.learners.updateLearnerInfo(learnerId, info, done));
			await waitForJob(session, jobLocation(response));
			expect(await learnerOn(session, registrationId)).toMatchObject({
				id: learnerId,
				email: "keep@example.com",
				firstName: "Changed",
				lastName: "Keep",
			});
		});

		it("reports 400 when the body's id differs from the path's (renaming is not supported)", async () => {
			const { learnerId } = await register(session);
			const info = new ScormCloud.LearnerSchema(unique("other"));
			expect(await expectFailure((done) => session.learners.updateLearnerInfo(learnerId, info, done), 400)).toMatch(
				/renam/i,
			);
		});

		it("reports 400 for an invalid email", async () => {
			const { learnerId } = await register(session);
			const info = new ScormCloud.LearnerSchema(learnerId);
			info.email = "not-an-email";
			expect(await expectFailure((done) => session.learners.updateLearnerInfo(learnerId, info, done), 400)).toMatch(
				/email/,
			);
		});

		it("reports 404 naming an unknown learner", async () => {
			const learnerId = unique("nobody");
			const info = new ScormCloud.LearnerSchema(learnerId);
			info.firstName = "Ghost";
			expect(await expectFailure((done) => session.learners.updateLearnerInfo(learnerId, info, done), 404)).toContain(
				learnerId,
			);
		});
	});

	describe("deleteAllLearnerData", () => {
		it("answers 204 with a job Location; once the job completes the learner, its tags and registrations are gone", async () => {
			const learnerId = unique("erased");
			const first = await register(session, { learnerId, email: "gone@example.com", learnerTags: ["t1"] });
			const second = await register(session, { learnerId, registrationTags: ["r1"] });
			const bystander = await register(session, { learnerTags: ["stays"] });

			const { response } = await invoke<null>((done) =>
				session.eraser.deleteAllLearnerData(learnerId, adminEmail.toUpperCase(), done),
			);
			expect(response.status).toBe(204);
			const job = await waitForJob(session, jobLocation(response));
			expect(job).toMatchObject({ type: "deleteAllLearnerData", status: "completed", registrationsAffected: 2 });
			expect(JSON.stringify(job)).not.toContain(learnerId);

			await expectFailure((done) => session.learners.getLearnerTags(learnerId, done), 404);
			for (const { registrationId } of [first, second]) {
				await expectFailure((done) => session.registrations.getRegistration(registrationId, done), 404, {
					bodyless: true,
				});
				await expectFailure((done) => session.registrations.getRegistrationProgress(registrationId, {}, done), 404);
			}
			const { data: list } = await invoke<ScormCloud.RegistrationListSchema>((done) =>
				session.registrations.getRegistrations({ learnerId }, done),
			);
			expect(list.registrations).toEqual([]);
			expect(await tagsOf(session, bystander.learnerId)).toEqual(["stays"]);
		});

		it("reports 403 when userEmail is a realm member without admin rights, and erases nothing", async () => {
			const { learnerId } = await register(session, { learnerTags: ["safe"] });
			await expectFailure((done) => session.eraser.deleteAllLearnerData(learnerId, memberEmail, done), 403);
			expect(await tagsOf(session, learnerId)).toEqual(["safe"]);
		});

		it("reports 403 when userEmail is not a realm user", async () => {
			const { learnerId } = await register(session);
			await expectFailure(
				(done) => session.eraser.deleteAllLearnerData(learnerId, `${unique("stranger")}@example.com`, done),
				403,
			);
		});

		it("reports 404 naming an unknown learner", async () => {
			const learnerId = unique("nobody");
			expect(
				await expectFailure((done) => session.eraser.deleteAllLearnerData(learnerId, adminEmail, done), 404),
			).toContain(learnerId);
		});

		it("lets a new registration with the erased id start afresh", async () => {
			const learnerId = unique("reborn");
			await register(session, { learnerId, learnerTags: ["before"] });
			const { response } = await invoke<null>((done) => session.eraser.deleteAllLearnerData(learnerId, adminEmail, done));
			await waitForJob(session, jobLocation(response));
			await register(session, { learnerId });
			expect(await tagsOf(session, learnerId)).toEqual([]);
		});
	});
});

describe("OAuth scopes on LearnerApi", () => {
	it("reports 403 naming the scope a token lacks", async () => {
		const app = await provisionApp();
		const basic = await openSession("Basic", app);
		const { learnerId } = await register(basic);
		const readOnly = new ScormCloud.LearnerApi(oauthClient((await mintToken(app, "read:learner")).accessToken ?? ""));
		const writeOnly = new ScormCloud.LearnerApi(oauthClient((await mintToken(app, "write:learner")).accessToken ?? ""));

		expect(await invoke((done) => readOnly.getLearnerTags(learnerId, done))).toMatchObject({ response: { status: 200 } });
		expect(await expectFailure((done) => writeOnly.getLearnerTags(learnerId, done), 403)).toContain("read:learner");
		expect(await expectFailure((done) => readOnly.putLearnerTags(learnerId, tagList(["x"]), done), 403)).toContain(
			"write:learner",
		);
		const info = new ScormCloud.LearnerSchema(learnerId);
		expect(await expectFailure((done) => readOnly.updateLearnerInfo(learnerId, info, done), 403)).toContain(
			"write:learner",
		);
		const adminEmail = `${unique("admin")}@example.com`;
		await putRealmUser(adminEmail, "admin");
		expect(await expectFailure((done) => writeOnly.deleteAllLearnerData(learnerId, adminEmail, done), 403)).toContain(
			"admin",
		);
	});
});
