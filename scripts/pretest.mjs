// `npm test`'s first step (package.json "pretest"): the browser tests (test/interop/console*.test.ts,
// docs-page.test.ts) drive Debian's headless Chromium. When it is missing, install it if this machine can (root, with
// apt-get, as in CI and most containers); otherwise stop before the suite, saying the one command to run, rather than
// let the browser tests fail one by one.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";

const chromium = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
if (existsSync(chromium)) process.exit(0);

if (process.env.CHROMIUM_PATH) {
	console.error(`CHROMIUM_PATH is ${chromium}, which does not exist: point it at a Chromium binary, or unset it to use /usr/bin/chromium.`);
	process.exit(1);
}

const root = typeof process.getuid === "function" && process.getuid() === 0;
const hasAptGet = spawnSync("sh", ["-c", "command -v apt-get"], { stdio: "ignore" }).status === 0;
if (root && hasAptGet) {
	console.log("Chromium is missing (the browser tests need it): installing Debian's chromium with apt-get…");
	const install = spawnSync("sh", ["-c", "apt-get update && apt-get install -y chromium"], { stdio: "inherit" });
	if (install.status === 0 && existsSync(chromium)) process.exit(0);
	console.error("Installing chromium failed (see apt-get's output above).");
}
console.error(
	[
		"npm test needs Chromium for its browser tests, and it is not installed. Install it with:",
		"",
		"    sudo apt-get install -y chromium",
		"",
		"(or set CHROMIUM_PATH to a Chromium binary), then run npm test again.",
	].join("\n"),
);
process.exit(1);
