import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
	{ ignores: ["node_modules", "dist", ".wrangler", "worker-configuration.d.ts", "bench/results", "coverage"] },
	js.configs.recommended,
	...tseslint.configs.recommended,
	// Node scripts (and CI's summary): the few globals they use.
	{
		files: ["scripts/**/*.mjs", ".ci/**/*.mjs"],
		languageOptions: {
			globals: {
				Buffer: "readonly",
				clearTimeout: "readonly",
				console: "readonly",
				process: "readonly",
				setTimeout: "readonly",
			},
		},
	},
	// The benchmark's runner (bench/run.mjs, bench/lib/) is Node; its workers are TypeScript, typed like src.
	{
		files: ["bench/**/*.mjs"],
		languageOptions: {
			globals: {
				Buffer: "readonly",
				URL: "readonly",
				console: "readonly",
				fetch: "readonly",
				performance: "readonly",
				process: "readonly",
				setTimeout: "readonly",
			},
		},
	},
	{
		files: ["src/**/*.ts", "src/**/*.tsx", "test/**/*.ts", "bench/**/*.ts"],
		languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
		rules: {
			"@typescript-eslint/no-floating-promises": "error",
			"@typescript-eslint/no-misused-promises": "error",
			"@typescript-eslint/await-thenable": "error",
			"@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
			"no-control-regex": "off",
		},
	},
);
