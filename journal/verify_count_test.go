package journal

import "context"

func verifyStateCount(ctx context.Context, j *Journal) (int, int, error) {
	mm := 0
	n, err := j.VerifyStateFunc(ctx, func(Mismatch) { mm++ })
	return mm, n, err
}
