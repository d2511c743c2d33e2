// Image-level metrics against hand-computed values (scikit-learn's definitions).
#include <gtest/gtest.h>

#include "lriad/eval/metrics.h"

using namespace lriad::eval;

TEST(Metrics, ConfusionAndRatesByHand) {
  // labels 1 1 1 0 0 0 0 ; preds 1 0 1 1 0 0 0 -> tp 2, fn 1, fp 1, tn 3
  std::vector<int> y = {1, 1, 1, 0, 0, 0, 0}, p = {1, 0, 1, 1, 0, 0, 0};
  auto m = binary_metrics(y, p, {});
  EXPECT_EQ(m.cm.tp, 2);
  EXPECT_EQ(m.cm.fn, 1);
  EXPECT_EQ(m.cm.fp, 1);
  EXPECT_EQ(m.cm.tn, 3);
  EXPECT_NEAR(m.accuracy, 5.0 / 7, 1e-12);
  EXPECT_NEAR(m.precision, 2.0 / 3, 1e-12);
  EXPECT_NEAR(m.recall, 2.0 / 3, 1e-12);
  EXPECT_NEAR(m.specificity, 3.0 / 4, 1e-12);
  EXPECT_NEAR(m.f1, 2.0 / 3, 1e-12);                              // 2PR/(P+R) with P = R = 2/3
  EXPECT_NEAR(m.balanced_accuracy, (2.0 / 3 + 0.75) / 2, 1e-12);  // 0.70833
  EXPECT_FALSE(m.auroc.has_value());                              // no scores given
}

TEST(Metrics, AurocWithTiesCountsHalf) {
  // anomalies {0.9, 0.5}, normals {0.5, 0.1}: pairs (0.9>0.5) (0.9>0.1) (0.5=0.5 -> 1/2) (0.5>0.1) = 3.5/4
  EXPECT_NEAR(*auroc({1, 1, 0, 0}, {0.9, 0.5, 0.5, 0.1}), 0.875, 1e-12);
  EXPECT_NEAR(*auroc({1, 0}, {0.2, 0.8}), 0.0, 1e-12);  // perfectly wrong
  EXPECT_NEAR(*auroc({1, 0, 1, 0}, {0.5, 0.5, 0.5, 0.5}), 0.5, 1e-12);
  EXPECT_FALSE(auroc({0, 0, 0}, {0.1, 0.2, 0.3}).has_value());  // one class: undefined, not a crash
}

TEST(Metrics, AveragePrecisionLikeSklearn) {
  // sklearn's docstring example: y = [0,0,1,1], s = [0.1,0.4,0.35,0.8] -> AP 0.8333
  // thresholds 0.8: R=.5 P=1 ; 0.4: R=.5 P=.5 ; 0.35: R=1 P=2/3 -> .5*1 + 0 + .5*(2/3) = 0.8333
  EXPECT_NEAR(*average_precision({0, 0, 1, 1}, {0.1, 0.4, 0.35, 0.8}), 0.833333333, 1e-8);
  // A tie at the top: one threshold with P = 1/2, R = 1 -> AP 0.5
  EXPECT_NEAR(*average_precision({1, 0}, {0.7, 0.7}), 0.5, 1e-12);
  EXPECT_FALSE(average_precision({0, 0}, {0.3, 0.2}).has_value());
}

TEST(Metrics, AllNormalPredictionsAndMissingClasses) {
  // Everything predicted normal: precision and F1 are 0 (zero_division=0), recall 0, specificity 1.
  auto m = binary_metrics({1, 0, 0, 1}, {0, 0, 0, 0}, {0.1, 0.2, 0.3, 0.4});
  EXPECT_EQ(m.precision, 0.0);
  EXPECT_EQ(m.f1, 0.0);
  EXPECT_EQ(m.recall, 0.0);
  EXPECT_EQ(m.specificity, 1.0);
  EXPECT_NEAR(m.balanced_accuracy, 0.5, 1e-12);
  // anomalies {0.1, 0.4} vs normals {0.2, 0.3}: 0.1<0.2, 0.1<0.3, 0.4>0.2, 0.4>0.3 -> 2/4
  EXPECT_NEAR(*m.auroc, 0.5, 1e-12);
  // A category without anomalies: AUROC/AP null, balanced accuracy = specificity.
  auto normal_only = binary_metrics({0, 0, 0}, {0, 1, 0}, {0.1, 0.9, 0.2});
  EXPECT_FALSE(normal_only.auroc.has_value());
  EXPECT_FALSE(normal_only.average_precision.has_value());
  EXPECT_NEAR(normal_only.balanced_accuracy, 2.0 / 3, 1e-12);
}

TEST(Metrics, RocCurveEndpointsAndSteps) {
  auto roc = roc_curve({1, 1, 0, 0}, {0.9, 0.5, 0.5, 0.1});
  ASSERT_EQ(roc.size(), 4u);  // +inf, 0.9, 0.5 (tie merged), 0.1
  EXPECT_EQ(roc[1].tpr, 0.5);
  EXPECT_EQ(roc[1].fpr, 0.0);
  EXPECT_EQ(roc[2].tpr, 1.0);
  EXPECT_EQ(roc[2].fpr, 0.5);
  EXPECT_EQ(roc.back().fpr, 1.0);
}
