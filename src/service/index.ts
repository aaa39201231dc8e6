/**
 * The service: the one module the CLI and the bot use. Runs are driven by the Orchestrator; doctor, unstick and reset
 * act on a ClusterTarget (the CLI builds one with kubeTarget, src/cli/targets.ts).
 */
export { Orchestrator, OrchestratorError, RunHandle, isRunId, leaseName, type Command, type CommandResult, type MembershipResolver, type RunEvent, type RunPreview, type StartRequest } from './orchestrator.ts';
export { ClusterService, type AuditRecord, type ClusterServiceOptions } from './cluster-service.ts';
export { Scheduler, type ScheduleEvent, type ScheduleSetting, type SchedulerOptions } from './schedules.ts';
export type { ClusterTarget, PaletteTarget } from './targets.ts';
export { doctor, doctorHasProblems, formatDoctorReport, type DoctorOptions, type DoctorReport, type Finding, type FindingId, type FindingStatus, type FixVerb } from './doctor.ts';
export { JoinWatcher, type JoinWatcherOptions } from './join-watcher.ts';
export { unstick, type UnstickOptions, type UnstickResult } from './unstick.ts';
export { planReset, reset, formatResetPlan, ResetError, RESET_ANNOTATIONS, type PlanResetOptions, type ResetNode, type ResetOptions, type ResetPlan, type ResetResult } from './reset.ts';
