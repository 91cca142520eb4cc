# Statistics shared by make bench and make ab (mawk: awk -f stats.awk -f PROG).
#
# med(A, K, M): the median of A[K, 1..M]; sets the globals lo and hi to its
# distribution-free 95% confidence interval, the order statistics
# (x(j), x(M-j+1)) with j the largest such that P(Bin(M, 1/2) < j) <= 0.025.
# Below 6 values no such j exists, and the interval is (min, max), whose
# coverage (coverage(M)) is 1 - 2^(1-M): 94% at 5, 88% at 4.
function med(a, k, m,    i, j, t, v, q) {
	for (i = 1; i <= m; i++) v[i] = a[k, i] + 0
	for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
	q = ci_j(m); lo = v[q]; hi = v[m - q + 1]
	return (m % 2) ? v[(m + 1) / 2] : (v[m / 2] + v[m / 2 + 1]) / 2
}
# ci_j(M): the order statistic j of the interval of a median of M values.
function ci_j(m,    c, p, i, j) {
	p = 0.5 ^ m; c = p; j = 1
	for (i = 1; i < m / 2; i++) { if (c > 0.025) break; j = i; p = p * (m - i + 1) / i; c += p }
	return j
}
# coverage(M): the probability that the interval of ci_j(M) holds the median.
function coverage(m,    j, c, p, i) {
	j = ci_j(m); p = 0.5 ^ m; c = 0
	for (i = 0; i < j; i++) { c += p; p = p * (m - i) / (i + 1) }
	return 1 - 2 * c
}
