/**
 * Event filtering: the Subscriptions API dialects (`exact`, `prefix`, `suffix`, `all`, `any`, `not`, `sql`) and
 * the CloudEvents SQL v1 engine behind `sql`. Everything is compiled once at config load; the resulting
 * predicates run per event.
 */
export {
  compileFilter,
  FilterCompileError,
  FilterSpecSchema,
  type FilterPath,
  type FilterPredicate,
  type FilterSpec,
} from "./dialects.js";
export {
  BUILTIN_FUNCTIONS,
  CESQL_ERROR_KINDS,
  CesqlParseError,
  compileCesql,
  MAX_DEPTH,
  parse as parseCesql,
  type BinaryOperator,
  type CesqlDiagnostic,
  type CesqlErrorKind,
  type CesqlEvalError,
  type CesqlResult,
  type CesqlType,
  type CesqlValue,
  type CompiledCesql,
  type CompileOptions,
  type Expr,
  type ParseOptions,
  type StaticType,
} from "./cesql/index.js";
