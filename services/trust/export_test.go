package trust

// ModuleBuilt is Module whose New also hands built the application it
// builds, so that a test sees the read models `custody rebuild` folds.
var ModuleBuilt = defaultModule
