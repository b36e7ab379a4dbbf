package runtime

// SetStepHook sets the function called at each durable step of a load or
// unload, for the crash test; nil removes it.
func SetStepHook(f func(step string)) { stepHook = f }
