package fsi

// Setlinfo is the national setlinfo object: a settlement (or, with every
// amount negated, the reversal of one) split between the funds and the patient.
type Setlinfo struct {
	MdtrtID         string `json:"mdtrt_id"`
	SetlID          string `json:"setl_id"`
	PsnNo           string `json:"psn_no"`
	SetlTime        string `json:"setl_time"` // TimeLayout, CST
	MedType         string `json:"med_type"`
	Insutype        string `json:"insutype"`
	MedfeeSumamt    Money  `json:"medfee_sumamt"`
	FulamtOwnpayAmt Money  `json:"fulamt_ownpay_amt"`
	OverlmtSelfpay  Money  `json:"overlmt_selfpay"`
	PreselfpayAmt   Money  `json:"preselfpay_amt"`
	InscpScpAmt     Money  `json:"inscp_scp_amt"`
	ActPayDedc      Money  `json:"act_pay_dedc"`
	HifpPay         Money  `json:"hifp_pay"`
	PoolPropSelfpay Ratio  `json:"pool_prop_selfpay"`
	CvlservPay      Money  `json:"cvlserv_pay"`
	HifesPay        Money  `json:"hifes_pay"`
	HifmiPay        Money  `json:"hifmi_pay"`
	HifobPay        Money  `json:"hifob_pay"`
	MafPay          Money  `json:"maf_pay"`
	OthPay          Money  `json:"oth_pay"`
	FundPaySumamt   Money  `json:"fund_pay_sumamt"`
	PsnPartAmt      Money  `json:"psn_part_amt"`
	AcctPay         Money  `json:"acct_pay"`
	PsnCashPay      Money  `json:"psn_cash_pay"`
	HospPartAmt     Money  `json:"hosp_part_amt"`
	Balc            Money  `json:"balc"`
	MedinsSetlID    string `json:"medins_setl_id"`
	ClrOptins       string `json:"clr_optins"`
	ClrWay          string `json:"clr_way"`
	ClrType         string `json:"clr_type"`
}

// Fund pay types of setldetail.
const (
	FundPayEmployeePool    = "310100" // employee pooled fund
	FundPayEmployeeAccount = "310200" // employee personal account
	FundPayHifob           = "330100" // employee large-expense subsidy
	FundPayResidentPool    = "390100" // resident pooled fund
	FundPayHifmi           = "390200" // resident critical-illness insurance
	FundPayMaf             = "610100" // medical assistance
)

// FundPayment is one setldetail row: what one fund paid, and the most it
// could have paid (the remaining cap or balance before this settlement).
type FundPayment struct {
	FundPayType string `json:"fund_pay_type"`
	FundPayamt  Money  `json:"fund_payamt"`
	CrtPaybLmt  Money  `json:"crt_payb_lmt_amt"`
}

// SettleOutput is the output of 2206/2207/2208, 2303/2304/2305 and 2101/2102/2103.
type SettleOutput struct {
	Setlinfo   Setlinfo      `json:"setlinfo"`
	Setldetail []FundPayment `json:"setldetail"` // [] when no fund paid
}

// PricedLine is one fee line as the platform classified it (the result of
// 2204/2301): the amounts outside the funds' scope and the catalog's class.
type PricedLine struct {
	FeedetlSN        string `json:"feedetl_sn"`
	DetItemFeeSumamt Money  `json:"det_item_fee_sumamt"`
	Cnt              string `json:"cnt"`
	Pric             string `json:"pric"`
	PricUplmtAmt     string `json:"pric_uplmt_amt"` // the catalog's price cap, "" when none
	SelfpayProp      string `json:"selfpay_prop"`   // "" when not in the catalog
	FulamtOwnpayAmt  Money  `json:"fulamt_ownpay_amt"`
	OverlmtAmt       Money  `json:"overlmt_amt"`
	PreselfpayAmt    Money  `json:"preselfpay_amt"`
	InscpScpAmt      Money  `json:"inscp_scp_amt"`
	ChrgitmLv        string `json:"chrgitm_lv"`       // 01 甲, 02 乙, 03 丙; "" when not in the catalog
	MedChrgitmType   string `json:"med_chrgitm_type"` // drug, service, material; "" when not in the catalog
}
