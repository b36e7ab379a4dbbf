package runtime_test

func crashHelper() int { return 1 }
