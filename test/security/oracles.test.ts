import { describe, expect, it } from "vitest";
import { call } from "../support/client";
import { expectMessage } from "../support/expect";
import { createApp, realmUser, uniqueValue } from "../support/fixtures";

// SPEC §11: no answer reveals something the caller may not know, by status code either.

describe("POST /learner/:learnerId/delete-information", () => {
	it("answers an unknown learner 404 whether or not userEmail is a realm owner or admin", async () => {
		const app = await createApp();
		const made_up = uniqueValue("nobody");
		const path = (email: string) => `/learner/${made_up}/delete-information?userEmail=${encodeURIComponent(email)}`;
		const answers = [];
		for (const email of [await realmUser("admin"), await realmUser("owner"), await realmUser("member"), `${uniqueValue("stranger")}@example.com`]) {
			answers.push(await expectMessage(await call("POST", path(email), { auth: app.auth }), 404));
		}
		expect(answers).toEqual(Array(4).fill(`Learner [${made_up}] was not found`));
	});
});
