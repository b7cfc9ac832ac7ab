package report

// SampleReport is the made-up report the renderer tests draw, for the
// tests of package report_test that compare it with a real run.
var SampleReport = sampleReport
