// The official client (3.0.0) ships plain JavaScript without types. These declarations cover only what the
// interop tests call, transcribed from its generated sources (src/rustici-software-cloud-v2/**), so a wrong
// argument order fails the typecheck instead of the test.
declare module "@rusticisoftware/scormcloud-api-v2-client-javascript" {
	namespace ScormCloud {
		/** superagent 3's response, as the client hands it to every callback. */
		interface HttpResponse {
			status: number;
			/** Header names are lower-case. */
			headers: Record<string, string | undefined>;
			body: unknown;
			text: string;
		}

		/** superagent 3's error for a non-2xx answer (status and response), or a network error (neither). */
		interface ClientError extends Error {
			status?: number;
			response?: HttpResponse;
		}

		type Callback<T> = (error: ClientError | null, data: T, response: HttpResponse) => void;

		class ApiClient {
			static instance: ApiClient;
			basePath: string;
			authentications: {
				APP_MANAGEMENT: { type: "basic"; username?: string; password?: string };
				APP_NORMAL: { type: "basic"; username?: string; password?: string };
				OAUTH: { type: "oauth2"; accessToken?: string };
			};
			defaultHeaders: Record<string, string>;
			timeout: number;
			/** false adds `_=<timestamp>` to every GET. */
			cache: boolean;
		}

		class LearnerSchema {
			constructor(id: string);
			id: string;
			email?: string;
			firstName?: string;
			lastName?: string;
		}

		class TagListSchema {
			tags?: string[];
		}

		class BatchTagsSchema {
			constructor(ids: string[], tags: string[]);
			ids: string[];
			tags: string[];
		}

		class CreateRegistrationSchema {
			constructor(courseId: string, learner: LearnerSchema, registrationId: string);
			courseId: string;
			learner: LearnerSchema;
			registrationId: string;
			learnerTags?: string[];
			courseTags?: string[];
			registrationTags?: string[];
		}

		class RegistrationSchema {
			id?: string;
			instance?: number;
			xapiRegistrationId?: string;
			updated?: Date;
			createdDate?: Date;
			registrationCompletion?: string;
			registrationSuccess?: string;
			totalSecondsTracked?: number;
			course?: { id?: string; title?: string; version?: number };
			learner?: LearnerSchema;
			tags?: string[];
		}

		class RegistrationListSchema {
			registrations: RegistrationSchema[];
			more?: string;
		}

		class ApplicationToken {
			accessToken?: string;
			expiresIn?: number;
			tokenType?: string;
		}

		class PingSchema {
			apiMessage?: string;
			currentTime?: string;
		}

		class AboutSchema {
			version?: string;
			distribution?: string;
		}

		class ApplicationRequestSchema {
			name?: string;
		}

		class ApplicationSchema {
			id?: string;
			name?: string;
		}

		class ApplicationListSchema {
			applications?: ApplicationSchema[];
		}

		class CredentialRequestSchema {
			name?: string;
			active?: boolean;
		}

		class PermissionsSchema {
			scopes?: string[];
			applicationName?: string;
		}

		class TokenRequestSchema {
			constructor(permissions: PermissionsSchema, expiry: Date);
			permissions?: PermissionsSchema;
			expiry?: Date;
		}

		class StringResultSchema {
			result?: string;
		}

		class CredentialCreatedSchema {
			id?: string;
			name?: string;
			credential?: string;
			status?: string;
		}

		class CredentialListSchema {
			credentials?: CredentialCreatedSchema[];
		}

		interface GetRegistrationsOptions {
			courseId?: string;
			learnerId?: string;
			since?: Date;
			until?: Date;
			tags?: string[];
			more?: string;
		}

		class LearnerApi {
			constructor(apiClient?: ApiClient);
			getLearnerTags(learnerId: string, callback: Callback<TagListSchema>): void;
			putLearnerTags(learnerId: string, tags: TagListSchema, callback: Callback<null>): void;
			deleteLearnerTags(learnerId: string, tags: TagListSchema, callback: Callback<null>): void;
			putLearnerTagsBatch(batch: BatchTagsSchema, callback: Callback<null>): void;
			updateLearnerInfo(learnerId: string, learnerInfo: LearnerSchema, callback: Callback<null>): void;
			deleteAllLearnerData(learnerId: string, userEmail: string, callback: Callback<null>): void;
		}

		class RegistrationApi {
			constructor(apiClient?: ApiClient);
			createRegistration(registration: CreateRegistrationSchema, opts: object, callback: Callback<null>): void;
			/** HEAD /registrations/{id}: "Check that a Registration exists". */
			getRegistration(registrationId: string, callback: Callback<null>): void;
			/** GET /registrations/{id}. */
			getRegistrationProgress(registrationId: string, opts: object, callback: Callback<RegistrationSchema>): void;
			getRegistrations(opts: GetRegistrationsOptions, callback: Callback<RegistrationListSchema>): void;
			deleteRegistration(registrationId: string, callback: Callback<null>): void;
			getRegistrationTags(registrationId: string, callback: Callback<TagListSchema>): void;
			putRegistrationTags(registrationId: string, tags: TagListSchema, callback: Callback<null>): void;
			deleteRegistrationTags(registrationId: string, tags: TagListSchema, callback: Callback<null>): void;
			putRegistrationTagsBatch(batch: BatchTagsSchema, callback: Callback<null>): void;
		}

		class AuthenticationApi {
			constructor(apiClient?: ApiClient);
			getAppToken(scope: string, opts: { expiration?: number }, callback: Callback<ApplicationToken>): void;
		}

		class PingApi {
			constructor(apiClient?: ApiClient);
			pingAppId(callback: Callback<PingSchema>): void;
		}

		class AboutApi {
			constructor(apiClient?: ApiClient);
			getAbout(callback: Callback<AboutSchema>): void;
		}

		class ApplicationManagementApi {
			constructor(apiClient?: ApiClient);
			createApplication(request: ApplicationRequestSchema, callback: Callback<ApplicationSchema>): void;
			getApplicationList(callback: Callback<ApplicationListSchema>): void;
			deleteApplication(childAppId: string, callback: Callback<null>): void;
			createCredential(childAppId: string, request: CredentialRequestSchema, callback: Callback<CredentialCreatedSchema>): void;
			getCredentials(childAppId: string, callback: Callback<CredentialListSchema>): void;
			updateCredential(
				childAppId: string,
				credentialId: string,
				update: CredentialRequestSchema,
				callback: Callback<null>,
			): void;
			deleteCredential(childAppId: string, credentialId: string, callback: Callback<null>): void;
			createToken(tokenRequest: TokenRequestSchema, callback: Callback<StringResultSchema>): void;
		}
	}

	export default ScormCloud;
}
