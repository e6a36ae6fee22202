// The API's enum values in words, as Entra's and the Microsoft 365 admin center's screens say
// them, so that an admin recognises each state and reason.

export const ERROR_LABELS = {
  NONE: "No error",
  COUNT_VIOLATION: "Not enough licenses",
  MUTUALLY_EXCLUSIVE_VIOLATION: "Conflicting service plans",
  DEPENDENCY_VIOLATION: "Prerequisite plan missing",
  PROHIBITED_IN_USAGE_LOCATION_VIOLATION: "Usage location not allowed",
  UNIQUENESS_VIOLATION: "Duplicate proxy address",
  OTHER: "Other error",
};

/** The filter of the users in error, in the API's order of codes. */
export const ERROR_CODES = Object.keys(ERROR_LABELS).filter((code) => code !== "NONE");

export const STATE_LABELS = {
  PENDING: "Pending",
  ACTIVE: "Active",
  ACTIVE_WITH_ERROR: "Active, with error",
  ERROR: "Error",
};

/** Badge tone of an assignment state. */
export const STATE_TONES = {
  PENDING: "info",
  ACTIVE: "ok",
  ACTIVE_WITH_ERROR: "warn",
  ERROR: "bad",
};

export const PROCESSING_LABELS = {
  QUEUED: "Queued",
  IN_PROGRESS: "In progress",
  COMPLETE: "Complete",
};

export function errorLabel(code) {
  return ERROR_LABELS[code] ?? code;
}

/**
 * A group's status as the admin center words it: processing first (its errors may be about to
 * change), then errors, else all assigned.
 */
export function groupStatus(group) {
  if (group.licenseProcessingState !== "COMPLETE") return { tone: "info", text: "In progress" };
  if (group.licenseErrorCount > 0) return { tone: "bad", text: "Errors and issues" };
  if (group.assignedLicenses && group.assignedLicenses.length === 0) {
    return { tone: "muted", text: "No licenses" };
  }
  return { tone: "ok", text: "All licenses assigned" };
}

/** Alert kinds in words, and the badge tone of each. */
export const ALERT_LABELS = {
  LOW_SEATS: "Low on seats",
  SEATS_EXHAUSTED: "Out of seats",
  LICENSE_ERRORS: "Users in error",
};

export const ALERT_TONES = {
  LOW_SEATS: "warn",
  SEATS_EXHAUSTED: "bad",
  LICENSE_ERRORS: "bad",
};

/** What a webhook may be sent, in words, in the API's order. */
export const WEBHOOK_EVENT_LABELS = {
  ALERT_RAISED: "Alert raised",
  ALERT_RESOLVED: "Alert resolved",
  GROUP_PROCESSING_COMPLETE: "Group processing finished",
  AUDIT_EVENT: "Every history event",
};
